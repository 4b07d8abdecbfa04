"""`looplab import` says what repeated rows became (issue 17): rows, distinct inputs, counts kept,
conflicting labels; `--id COLUMN` keeps different ids apart; `--json` carries the same."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import run

ROWS = "order,shop,hour,late\no1,a,1,yes\no2,a,1,no\no3,a,1,no\no4,b,2,yes\n"


def test_import_summary_names_rows_inputs_and_conflicts(home: Path, tmp_path: Path) -> None:
    assert run("init", "shops", "--task", "tabular", "--labels", "yes,no")[0] == 0
    path = tmp_path / "rows.csv"
    path.write_text(ROWS)
    code, out, err = run("import", "shops", str(path), "--fields", "shop,hour", "--label", "late")
    assert code == 0, err
    assert "4 rows, 2 distinct inputs, counts kept; 2 new records, 4 labeled rows;" in out
    assert "1 input carries conflicting labels" in out
    code, out, _ = run("status", "shops")
    assert code == 0 and "2 records standing for 4 rows, 2 labeled" in out
    # The same file again is refused: it would count every row twice.
    code, _, err = run("import", "shops", str(path), "--label", "late")
    assert code == 2 and "count each of its rows and labels twice" in err
    assert run("init", "orders", "--task", "tabular", "--labels", "yes,no")[0] == 0
    code, out, err = run(
        "import",
        "orders",
        str(path),
        "--fields",
        "shop,hour",
        "--label",
        "late",
        "--id",
        "order",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    # Different ids stay apart even where the inputs are the same: 4 new records.
    assert {k: report[k] for k in ("rows", "imported", "distinct", "conflicting", "dedupe")} == {
        "rows": 4,
        "imported": 4,
        "distinct": 4,
        "conflicting": 0,
        "dedupe": "id",
    }
    assert report["summary"].startswith("4 rows, 4 distinct ids; 4 new records")


def test_dedupe_setting_is_checked(home: Path) -> None:
    assert run("init", "shops", "--task", "tabular", "--labels", "yes,no")[0] == 0
    code, _, err = run("config", "shops", "dedupe=rows")
    assert code == 2 and "dedupe must be one of content, none" in err
    code, _, err = run("config", "shops", "dedupe=none")
    assert code == 0, err
