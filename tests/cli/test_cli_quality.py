"""`looplab quality`: the scan through the command line, its summary, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.cli.conftest import run
from tests.reviewdata import LABELS, seeded_rows


def project(tmp_path: Path, n: int, flips: int) -> None:
    rows, _ = seeded_rows(n, flips)
    path = tmp_path / "news.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic"])
        writer.writerows(rows)
    assert run("init", "news", "--labels", ",".join(LABELS))[0] == 0
    code, _, err = run("import", "news", str(path), "--text", "text", "--label", "topic")
    assert code == 0, err


def test_quality_runs_the_scan_and_summarises_it(home: Path, tmp_path: Path) -> None:
    project(tmp_path, 150, 12)
    code, out, _ = run("quality", "news")
    assert code == 0 and "no label-error scan yet; run `looplab quality news --run`" in out
    code, out, err = run("quality", "news", "--run")
    assert code == 0, err
    assert "150 labeled records" in out and "queued for review" in out
    assert "review: " in out and " open, 0 kept, 0 relabeled, 0 ambiguous" in out
    assert "confirm rate: no decision yet" in out
    code, out, _ = run("quality", "news", "--json")
    state = json.loads(out)
    scan = state["scan"]
    assert scan["status"] == "done" and scan["n_scanned"] == 150
    assert scan["counts"]["open"] == scan["n_queued"] > 0
    assert scan["precision"] == {
        "decided": 0,
        "confirmed": 0,
        "rate": None,
        "low": 0.0,
        "high": 1.0,
    }


def test_too_few_labels_is_a_message_and_unknown_project_exit_2(home: Path, tmp_path: Path) -> None:
    project(tmp_path, 12, 0)
    code, out, _ = run("quality", "news", "--run")
    assert code == 0
    assert "not scanned" in out and "need 30 labeled records of 2+ labels to scan; have 12" in out
    code, _, err = run("quality", "nwes")
    assert code == 2 and "no project named 'nwes'; did you mean 'news'?" in err
