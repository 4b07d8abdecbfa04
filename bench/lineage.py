"""Lineage rows and artifacts as versions accumulate: the row-per-version table against runs.

A text project of ``--records`` records is labeled by eight annotators in steps of ``--step``
answers (a tenth of records answered twice, by two people who disagree one time in five; one
answer in fifty replaced by its author), and after each step a version is registered with the
lineage the training job writes (:func:`looplab.learn.dataset.labeled_set`, trust's weights, the
content-hash split) and a 1 MB stand-in artifact: no model is fitted, since lineage does not
depend on it. Then it reports the rows a row-per-version table holds (what 0014 stored, read
through the compat view), the runs 0015 stores, the time of the 0015 conversion both ways, and
what ``looplab gc`` removes with the default retention.

    .venv/bin/python bench/lineage.py [--records 32000] [--step 1600] [--versions 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, update

from looplab.core import projects
from looplab.core.store import MIGRATIONS_DIR, Store
from looplab.core.tables import Annotation, Record, TrainingLabel, User
from looplab.learn import dataset, lineage, registry, retention
from looplab.learn.training import _lineage

LABELS = ["business", "politics", "sport", "tech", "entertainment"]


def migrate(store: Store, revision: str, *, down: bool) -> float:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    started = time.perf_counter()
    with store.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
        connection.commit()
    return time.perf_counter() - started


def seed(store: Store, n: int, rng: np.random.Generator) -> tuple[int, list[int], list[str]]:
    """The project, its eight annotators and each record's true label."""
    words = [f"w{i}" for i in range(5000)]
    truth = [LABELS[i % len(LABELS)] for i in range(n)]
    with store.write() as session:
        project = projects.create_project(session, "news", task="text", labels=LABELS, actor="b")
        users = [User(name=f"a{i}", role="annotator", token_hash=f"h{i}") for i in range(8)]
        session.add_all(users)
        session.flush()
        for i in range(n):
            text = " ".join(rng.choice(words, 12)) + f" {truth[i]} r{i}"
            session.add(
                Record(
                    project_id=project.id,
                    content_hash=rng.bytes(16),
                    payload={"text": text},
                    meta={},
                    score=float(rng.random()),
                )
            )
        return project.id, [u.id for u in users], truth


def label_step(
    store: Store, pid: int, users: list[int], truth: list[str], done: int, step: int, rng: Any
) -> None:
    """``step`` answers on the next records: some twice, some replaced by their author."""
    with store.write() as session:
        ids = list(
            session.scalars(select(Record.id).where(Record.project_id == pid).order_by(Record.id))
        )
        for rid in ids[done : done + step]:
            label = truth[rid - ids[0]]
            who = [int(u) for u in rng.choice(users, 2 if rng.random() < 0.1 else 1, replace=False)]
            for k, uid in enumerate(who):
                given = label if k == 0 or rng.random() > 0.2 else str(rng.choice(LABELS))
                session.add(
                    Annotation(
                        project_id=pid,
                        record_id=rid,
                        annotator_id=uid,
                        origin="human",
                        value={"label": given},
                        label=given,
                        status="active",
                    )
                )
        session.flush()
        replaced = rng.choice(ids[done : done + step], max(1, step // 50), replace=False)
        session.execute(
            update(Annotation)
            .where(Annotation.record_id.in_([int(r) for r in replaced]))
            .values(status="superseded")
        )


def register(store: Store, pid: int, folder: Path) -> int:
    """A version with exactly the lineage the training job writes; its lineage size."""
    with store.read() as session:
        data = dataset.labeled_set(session, projects.get_project(session, "news"))
    fit, test = data.subset("train"), data.subset("test")
    with store.write() as session:
        project = projects.get_project(session, "news")
        version = registry.next_version(session, project)
        path = folder / "news" / f"v{version}-{version:08x}.skops"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1_000_000)
        registry.register(
            session,
            project,
            version=version,
            artifact=path,
            sha256="0" * 64,
            config={},
            metrics={},
            train_annotations=_lineage(fit),
            test_annotations=_lineage(test),
            actor="bench",
        )
    return len(fit.record_ids) + len(test.record_ids)


def run(records: int, step: int, versions: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/looplab.db")
        store.upgrade()
        pid, users, truth = seed(store, records, rng)
        sizes = []
        for v in range(versions):
            label_step(store, pid, users, truth, v * step, step, rng)
            sizes.append(register(store, pid, store.artifacts_dir))
        with store.read() as session:
            rows = session.scalar(select(func.count()).select_from(TrainingLabel)) or 0
            runs = lineage.stored_rows(session)
            labels = session.scalar(select(func.count()).select_from(Annotation)) or 0
        down = migrate(store, "0014", down=True)
        up = migrate(store, "head", down=False)
        with store.read() as session:
            assert lineage.stored_rows(session) == runs
        dry = retention.collect(store, "news", actor="bench", dry_run=True)
        report = retention.collect(store, "news", actor="bench")
        with store.read() as session:
            after = lineage.stored_rows(session)
        store.dispose()
    return {
        "versions": versions,
        "annotations": labels,
        "records_per_version": sizes,
        "rows_per_version_table": rows,
        "runs": runs,
        "ratio": round(rows / runs, 2) if runs else None,
        "migrate_down_s": round(down, 2),
        "migrate_up_s": round(up, 2),
        "gc_dry_run_removes": [r["version"] for r in dry["removed"]],
        "gc_removed": [r["version"] for r in report["removed"]],
        "gc_mb_freed": round(report["bytes_freed"] / 1e6, 1),
        "runs_after_gc": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=32000)
    parser.add_argument("--step", type=int, default=1600)
    parser.add_argument("--versions", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.records, args.step, args.versions)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    print(
        "RESULT "
        + " ".join(
            f"{k}={result[k]}"
            for k in ("versions", "rows_per_version_table", "runs", "ratio", "migrate_up_s")
        )
    )


if __name__ == "__main__":
    main()
