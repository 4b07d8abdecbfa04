"""Import speed and memory: looplab's streaming import against pandas + bulk insert, on SQLite.

Generates a CSV of short, realistic-ish sentences (about 1% of rows repeat an earlier sentence,
half of those with changed spacing so only normalisation finds them), then runs each importer in a
child process of its own and reads the child's peak RSS:

* looplab: ``ingest.import_file`` into a fresh workspace store (one transaction, dedupe through
  the unique hash index), at ``--rows`` and at a fifth of it, to show memory does not grow with
  the file; a third run under ``tracemalloc`` reports the peak Python heap at both sizes.
* reference: ``pandas.read_csv`` of the whole file, the same normalisation and hash, then
  ``drop_duplicates`` and ``DataFrame.to_sql`` into a plain SQLite table with the same columns, the
  same unique ``(project_id, content_hash)`` index and the same pragmas.

Records/s counts file rows over the import including its commit. Goal: >= 50,000 records/s, with
memory flat in file size. SQLite's page cache (``cache_size`` = 128 MiB in ``looplab.core.store``)
is part of RSS and fills as the database grows, up to that cap; the Python heap is the flat part.

Usage::

    python bench/ingest.py [--rows 1000000] [--quick] [--dir DIR] [--json]

The last line is ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_RPS = 50_000
#: looplab.core.store sets PRAGMA cache_size=-131072: SQLite may hold up to this much page cache.
SQLITE_CACHE_MB = 128

SUBJECTS = [
    "The city council",
    "A local bakery",
    "The national team",
    "Our new chief executive",
    "A small startup",
    "The central bank",
    "Researchers at the university",
    "The film's director",
    "A famous chef",
    "The opposition leader",
    "Striking rail workers",
    "The home side",
    "A cybersecurity firm",
    "The health minister",
    "Young voters",
    "The orchestra",
    "A regional airline",
    "Climate scientists",
    "The tech giant",
    "Shareholders",
    "The coach",
    "A veteran striker",
    "Local residents",
    "The software team",
    "An independent label",
    "The museum",
    "Hospital staff",
    "The mayor",
    "Two rival banks",
    "The festival organisers",
    "A chip maker",
    "The prime minister",
    "Farmers",
    "The jury",
    "A streaming service",
    "The union",
    "The police",
    "Investors",
    "The goalkeeper",
    "Critics",
]
VERBS = [
    "approved",
    "rejected",
    "announced",
    "criticised",
    "launched",
    "postponed",
    "praised",
    "questioned",
    "unveiled",
    "cancelled",
    "defended",
    "celebrated",
    "delayed",
    "won",
    "lost",
    "signed",
    "reviewed",
    "cut",
    "raised",
    "doubled",
    "halved",
    "backed",
    "blocked",
    "released",
    "tested",
    "sold",
    "bought",
    "expanded",
    "closed",
    "reopened",
    "sued",
    "hired",
    "fired",
    "welcomed",
    "ignored",
    "funded",
    "designed",
    "built",
    "replaced",
    "upgraded",
]
OBJECTS = [
    "the new budget",
    "a record deal",
    "the transfer",
    "its quarterly results",
    "the merger",
    "a wind farm",
    "the final",
    "a tax on sugar",
    "the peace talks",
    "the ticket prices",
    "an electric bus fleet",
    "the semi-final",
    "a new album",
    "the safety rules",
    "the strike",
    "a cheaper phone",
    "the stadium plans",
    "the interest rate",
    "a vaccine trial",
    "the broadband rollout",
    "the cup run",
    "a new drama series",
    "the pension reform",
    "a data centre",
    "the housing plan",
    "the season opener",
    "the exhibition",
    "an open-source model",
    "the bridge repairs",
    "the school meals scheme",
]
MANNERS = [
    "unexpectedly",
    "after a long debate",
    "without warning",
    "in a close vote",
    "to loud applause",
    "despite protests",
    "for the second time",
    "at the last minute",
    "quietly",
    "with great fanfare",
    "after months of talks",
    "amid fierce criticism",
    "in record time",
    "under pressure",
    "once again",
    "behind closed doors",
    "",
    "to the surprise of many",
    "ahead of schedule",
    "against the odds",
]
PLACES = [
    "in Leeds",
    "in Glasgow",
    "in Cardiff",
    "in Belfast",
    "in Bristol",
    "in Manchester",
    "in Lyon",
    "in Porto",
    "in Berlin",
    "in Madrid",
    "in Oslo",
    "in Dublin",
    "in Turin",
    "in Ghent",
    "in Krakow",
    "in Seville",
    "in Bergen",
    "in Zurich",
    "in Malmo",
    "in Nantes",
    "in Leipzig",
    "in Bilbao",
    "in Aarhus",
    "in Graz",
    "in Utrecht",
    "",
]
TIMES = [
    "on Monday",
    "on Tuesday",
    "on Wednesday",
    "on Thursday",
    "on Friday",
    "at the weekend",
    "this morning",
    "last night",
    "yesterday",
    "earlier today",
    "last week",
    "this year",
    "in March",
    "in June",
    "in October",
    "overnight",
]


def _sentence(index: int) -> str:
    parts = []
    for words in (SUBJECTS, VERBS, OBJECTS, MANNERS, PLACES, TIMES):
        index, digit = divmod(index, len(words))
        parts.append(words[digit])
    return " ".join(p for p in parts if p) + "."


def generate(path: Path, rows: int, *, seed: int = 7, duplicates: float = 0.01) -> int:
    """Write ``rows`` rows of ``id,text,source``; returns how many are duplicates."""
    space = 1
    for words in (SUBJECTS, VERBS, OBJECTS, MANNERS, PLACES, TIMES):
        space *= len(words)
    assert rows < space
    step = 2_654_435_761 % space  # coprime with the space: a permutation, so no accidental repeats
    while _gcd(step, space) != 1:
        step += 1
    rng = random.Random(seed)
    written: list[int] = []  # sentence indexes so far (ints: small enough at a million rows)
    dupes = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "source"])
        fresh = 0
        for i in range(rows):
            if written and rng.random() < duplicates:
                text = _sentence(written[rng.randrange(len(written))])
                if rng.random() < 0.5:
                    text = text.replace(" ", "  ", 1)  # only normalisation finds this one
                dupes += 1
            else:
                index = (fresh * step) % space
                fresh += 1
                written.append(index)
                text = _sentence(index)
            writer.writerow([i, text, "wire" if i % 3 else "web"])
    return dupes


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


# -- children -------------------------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_looplab(csv_path: Path, db: Path, trace: bool) -> dict[str, Any]:
    import tracemalloc

    from looplab.collect import ingest
    from looplab.core import projects
    from looplab.core.store import Store

    store = Store(f"sqlite:///{db}")
    store.upgrade()
    with store.write() as session:
        projects.create_project(session, "bench", task="text", labels=["a", "b"], actor="bench")
    baseline = _rss_mb()
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    with store.write() as session:
        project = projects.get_project(session, "bench")
        report = ingest.import_file(session, project, csv_path, text="text", actor="bench")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    heap = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    store.dispose()
    return {
        "rows": report.rows,
        "imported": report.imported,
        "duplicates": report.duplicates,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "baseline_mb": baseline,
        "peak_rss_mb": _rss_mb(),
        "peak_heap_mb": heap,
    }


def child_reference(csv_path: Path, db: Path) -> dict[str, Any]:
    import datetime as dt
    import hashlib
    import sqlite3
    import unicodedata

    import pandas as pd

    baseline = _rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(db)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-131072"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,"
        " batch_id INTEGER, source_line INTEGER, content_hash BLOB NOT NULL, payload TEXT NOT NULL,"
        " meta TEXT NOT NULL, n_human INTEGER NOT NULL, needed INTEGER NOT NULL,"
        " score REAL NOT NULL, created_at TEXT NOT NULL)"
    )
    conn.execute("CREATE UNIQUE INDEX uq ON records (project_id, content_hash)")
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    rows = len(frame)
    texts = frame["text"].tolist()
    canon = [
        json.dumps(
            {"text": " ".join(unicodedata.normalize("NFKC", t).split())},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for t in texts
    ]
    out = pd.DataFrame(
        {
            "project_id": 1,
            "batch_id": 1,
            "source_line": frame.index + 2,
            "content_hash": [hashlib.blake2b(c.encode(), digest_size=16).digest() for c in canon],
            "payload": [json.dumps({"text": t}, ensure_ascii=False) for t in texts],
            "meta": "{}",
            "n_human": 0,
            "needed": 1,
        }
    )
    out["score"] = [int.from_bytes(h[:6]) / 2**48 for h in out["content_hash"]]
    out["created_at"] = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    out = out.drop_duplicates("content_hash")
    out.to_sql("records", conn, if_exists="append", index=False, chunksize=10_000)
    conn.commit()  # to_sql wrote every chunk in one transaction, like the import
    conn.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "rows": rows,
        "imported": len(out),
        "duplicates": rows - len(out),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "baseline_mb": baseline,
        "peak_rss_mb": _rss_mb(),
        "peak_heap_mb": None,
    }


def run_child(kind: str, csv_path: Path, workdir: Path, *, trace: bool = False) -> dict[str, Any]:
    db = workdir / f"{kind}-{csv_path.stem}-{'trace' if trace else 'run'}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", kind, "--csv", str(csv_path), "--db", str(db)]
    if trace:
        command.append("--trace")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rps"] = result["rows"] / result["seconds"]
    result["cpu_rps"] = result["rows"] / result["cpu_seconds"]
    return result


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run on 50,000 rows (still ends with RESULT)"
    )
    parser.add_argument("--child", choices=["looplab", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows = min(args.rows, 50_000)

    if args.child == "looplab":
        print(json.dumps(child_looplab(args.csv, args.db, args.trace)))
        return 0
    if args.child == "reference":
        print(json.dumps(child_reference(args.csv, args.db)))
        return 0

    with tempfile.TemporaryDirectory(prefix="looplab-bench-") as tmp:
        workdir = args.dir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        small_rows = max(args.rows // 5, 1)
        files = {}
        for rows in (args.rows, small_rows):
            path = workdir / f"texts-{rows}.csv"
            started = time.perf_counter()
            dupes = generate(path, rows)
            files[rows] = path
            print(
                f"generated {rows:,} rows ({dupes:,} duplicates, "
                f"{path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        load = os.getloadavg()[0]
        results = {
            "looplab": run_child("looplab", files[args.rows], workdir),
            "looplab_small": run_child("looplab", files[small_rows], workdir),
            "looplab_heap": run_child("looplab", files[args.rows], workdir, trace=True),
            "looplab_heap_small": run_child("looplab", files[small_rows], workdir, trace=True),
            "reference": run_child("reference", files[args.rows], workdir),
            "reference_small": run_child("reference", files[small_rows], workdir),
        }
        load = max(load, os.getloadavg()[0])
    return report(args, results, small_rows, load)


def report(
    args: argparse.Namespace, results: dict[str, dict[str, Any]], small_rows: int, load: float
) -> int:
    ours, ref = results["looplab"], results["reference"]
    ours_small, ref_small = results["looplab_small"], results["reference_small"]
    heap, heap_small = (
        results["looplab_heap"]["peak_heap_mb"],
        results["looplab_heap_small"]["peak_heap_mb"],
    )
    rss_growth = ours["peak_rss_mb"] - ours_small["peak_rss_mb"]
    ref_growth = ref["peak_rss_mb"] - ref_small["peak_rss_mb"]
    fast = ours["rps"] >= GOAL_RPS
    # Flat: the Python heap barely moves with 5x the rows, and RSS grows by no more than SQLite's
    # page cache may (it fills up to its cap as the database grows).
    flat = heap <= heap_small * 1.25 + 8 and rss_growth <= SQLITE_CACHE_MB + 16
    same = ours["imported"] == ref["imported"]
    verdict = "PASS" if fast and flat and same else "FAIL"

    width = 28
    print(
        f"{'':{width}} {'records/s':>12} {'per CPU s':>10} {'seconds':>9} {'peak RSS MiB':>13}"
        f" {'imported':>10}"
    )
    for name, row in [
        (f"looplab ({ours['rows']:,} rows)", ours),
        (f"looplab ({small_rows:,} rows)", ours_small),
        (f"pandas+to_sql ({ref['rows']:,})", ref),
        (f"pandas+to_sql ({small_rows:,})", ref_small),
    ]:
        print(
            f"{name:{width}} {row['rps']:>12,.0f} {row['cpu_rps']:>10,.0f} {row['seconds']:>9.2f} "
            f"{row['peak_rss_mb']:>13.0f} {row['imported']:>10,}"
        )
    print(
        f"looplab peak Python heap (tracemalloc): {heap:.1f} MiB at {ours['rows']:,} rows, "
        f"{heap_small:.1f} MiB at {small_rows:,}"
    )
    print(
        f"peak RSS growth for 5x the rows: looplab {rss_growth:+.0f} MiB (SQLite page cache, "
        f"capped at {SQLITE_CACHE_MB} MiB), pandas {ref_growth:+.0f} MiB"
    )
    print(
        f"1-minute load average {load:.1f} on {os.cpu_count()} CPUs: records/s is wall clock (the"
        " goal); 'per CPU s' divides by the importer's own CPU time, which other load moves less"
    )
    ratio = ours["rps"] / ref["rps"]
    print(
        f"speed ratio looplab/pandas: {ratio:.2f}x; goal >= {GOAL_RPS:,} records/s: "
        f"{'met' if fast else 'missed'}; memory flat: {'yes' if flat else 'no'}; "
        f"same records: {'yes' if same else 'no'}; {verdict}"
    )
    fields = {
        "rows": ours["rows"],
        "looplab_rps": round(ours["rps"]),
        "looplab_cpu_rps": round(ours["cpu_rps"]),
        "looplab_seconds": round(ours["seconds"], 2),
        "looplab_peak_rss_mb": round(ours["peak_rss_mb"]),
        "looplab_small_peak_rss_mb": round(ours_small["peak_rss_mb"]),
        "looplab_heap_mb": round(heap, 1),
        "looplab_small_heap_mb": round(heap_small, 1),
        "pandas_rps": round(ref["rps"]),
        "pandas_cpu_rps": round(ref["cpu_rps"]),
        "pandas_peak_rss_mb": round(ref["peak_rss_mb"]),
        "pandas_small_peak_rss_mb": round(ref_small["peak_rss_mb"]),
        "ratio": round(ratio, 2),
        "imported": ours["imported"],
        "duplicates": ours["duplicates"],
        "load": round(load, 1),
        "verdict": verdict,
    }
    if args.json:
        print(json.dumps({**fields, "runs": results}))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
