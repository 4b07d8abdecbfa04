"""Retention and ``gc`` on a real store (SQLite and PostgreSQL): what is kept, what goes, and
that nothing a kept version answers changes.

The history has a reason for each of nine versions: v1 served and was replaced (the previous
production), v2 serves, v3 and v7 have none (they go), v4 was refused by the gate (an audit
event about it), v5 is named by another event's details, v6's guesses are still shown to
people, and v8 and v9 are the newest candidates (``keep_candidates=2``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exists, func, select, update

from looplab.core import audit, projects
from looplab.core.store import Store
from looplab.core.tables import (
    Annotation,
    AuditEvent,
    LineageRun,
    ModelVersion,
    Record,
    StageChange,
)
from looplab.learn import lineage, promotion, registry, retention
from tests.learn.test_lineage import answers
from tests.textdata import add_labeled, add_text_project, rows, train

DUMMY = "sklearn.dummy.DummyClassifier"
REMOVED = {"v3", "v7"}


def grow(store: Store, tmp_path: Path) -> None:
    """Nine versions of ``news`` with the reasons of the module docstring."""
    with store.write() as session:
        add_text_project(session, n=120)
    train(store, tmp_path)  # v1
    promotion.promote_version(store, "news", "v1", actor="alice")
    train(store, tmp_path)  # v2
    promotion.promote_version(store, "news", "v2", actor="alice", force=True, reason="test")
    with store.write() as session:
        project = projects.get_project(session, "news")
        only_v3 = [
            add_labeled(session, project, f"only-v3-{i}", {"text": body}, label).id
            for i, (body, label, _) in enumerate(rows(6, seed=3))
        ]
    train(store, tmp_path)  # v3: the only version that saw these six labels
    with store.write() as session:
        session.execute(
            update(Annotation).where(Annotation.record_id.in_(only_v3)).values(status="superseded")
        )
    train(store, tmp_path, estimator=DUMMY)  # v4: refused by the gate
    with store.read() as session:
        pid = projects.get_project(session, "news").id
    assert not promotion.auto_promote(store, pid, "v4", actor="auto_promote")["promoted"]
    train(store, tmp_path, estimator=None)  # v5
    with store.write() as session:
        audit.record(
            session,
            actor="alice",
            action="report.export",
            entity_type="project",
            entity_id=pid,
            project_id=pid,
            details={"model": "v5", "note": "sent to the risk team"},
        )
    train(store, tmp_path)  # v6
    with store.write() as session:
        session.execute(update(Record).where(Record.id == 1).values(pred_model=6, pred_label="x"))
    for _ in range(3):
        train(store, tmp_path)  # v7, v8, v9
    with store.write() as session:
        project = projects.get_project(session, "news")
        projects.write_settings(session, project, {"keep_candidates": 2}, actor="test")


def state(store: Store) -> dict[str, Any]:
    """Everything a gc run may change: versions, events, runs, stage changes, files."""
    with store.read() as session:
        versions = {m.name: registry.artifact_file(session, m) for m in _versions(session)}
        folder = registry.artifacts_dir(session) / "news"
        return {
            "versions": sorted(versions),
            "events": session.scalar(select(func.count()).select_from(AuditEvent)),
            "runs": lineage.stored_rows(session),
            "stages": session.scalar(select(func.count()).select_from(StageChange)),
            "files": sorted(p.name for p in folder.iterdir()),
            "artifacts": versions,
        }


def _versions(session: Any) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.version)))


def kept_answers(full: dict[str, Any]) -> dict[str, Any]:
    """The lineage answers about versions gc keeps (a removed version's are gone with it)."""
    return {
        "trained_on": {k: v for k, v in full["trained_on"].items() if k[0] not in REMOVED},
        "taught": {
            a: [n for n in names if n not in REMOVED] for a, names in full["taught"].items()
        },
        "cards": {n: c for n, c in full["cards"].items() if n not in REMOVED},
        "teachers": {n: t for n, t in full["teachers"].items() if n not in REMOVED},
        "histories": {
            r: [[m for m in models if m["version"] not in REMOVED] for models in per_answer]
            for r, per_answer in full["histories"].items()
        },
        "reference": {n: r for n, r in full["reference"].items() if n not in REMOVED},
    }


@pytest.fixture
def history(store: Store, tmp_path: Path) -> Store:
    grow(store, tmp_path)
    return store


def test_gc_keeps_what_retention_names_and_removes_the_rest(history: Store) -> None:
    before = state(history)
    lineage_before = answers(history)

    dry = retention.collect(history, "news", actor="test", dry_run=True)
    assert {r["version"] for r in dry["removed"]} == REMOVED
    assert state(history) == before  # --dry-run writes and removes nothing

    report = retention.collect(history, "news", actor="test")
    kept = {k["version"]: k["reasons"] for k in report["kept"]}
    assert {r["version"] for r in report["removed"]} == REMOVED
    assert set(kept) == {f"v{n}" for n in (1, 2, 4, 5, 6, 8, 9)}
    assert "production" in kept["v2"] and "previous production" in kept["v1"]
    assert kept["v4"] == ["audit"] and kept["v5"] == ["audit"] and kept["v6"] == ["suggestion"]
    assert kept["v8"] == ["recent candidate"] and kept["v9"] == ["latest", "recent candidate"]
    assert report["bytes_freed"] == sum(r["bytes"] for r in report["removed"]) > 0
    assert report["lineage_runs_pruned"] == 6  # the six labels only v3 saw

    after = state(history)
    assert after["versions"] == sorted(set(before["versions"]) - REMOVED)
    for name in REMOVED:
        assert not before["artifacts"][name].exists()
    assert all(path.exists() for path in after["artifacts"].values())
    with history.read() as session:
        orphaned_runs = session.scalar(
            select(func.count())
            .select_from(LineageRun)
            .where(
                ~exists().where(
                    ModelVersion.project_id == LineageRun.project_id,
                    ModelVersion.version >= LineageRun.first_version,
                    ModelVersion.version <= LineageRun.last_version,
                )
            )
        )
        assert orphaned_runs == 0
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "model.remove").order_by(AuditEvent.id)
        ).all()
        assert [e.details["version"] for e in events] == ["v3", "v7"]
        assert all(e.actor == "test" and e.details["sha256"] for e in events)
        assert audit.verify(session).ok
    assert kept_answers(answers(history)) == kept_answers(lineage_before)

    again = retention.collect(history, "news", actor="test")
    assert again["removed"] == [] and again["orphans"] == []


def test_gc_never_removes_production_or_a_version_an_audit_event_names(history: Store) -> None:
    with history.write() as session:
        project = projects.get_project(session, "news")
        projects.write_settings(session, project, {"keep_candidates": 0}, actor="test")
        session.execute(update(Record).values(pred_model=None, pred_label=None))
        named = {
            m.name
            for m in _versions(session)
            if session.scalar(
                select(func.count()).where(
                    AuditEvent.entity_type == "model",
                    AuditEvent.entity_id == str(m.id),
                    AuditEvent.action != "model.register",
                )
            )
        }
    report = retention.collect(history, "news", actor="test")
    removed = {r["version"] for r in report["removed"]}
    assert named >= {"v1", "v2", "v4"}  # served, serves, refused by the gate
    assert not removed & (named | {"v5"})
    assert removed == {"v3", "v6", "v7", "v8"}  # v9 is the latest
    with history.read() as session:
        project = projects.get_project(session, "news")
        production = registry.production(session, project)
        assert production is not None and production.name == "v2"
        registry.load(session, production)  # its artifact is still there and intact


def test_a_crash_after_the_commit_leaves_orphans_the_next_run_removes(
    history: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = state(history)
    folder = before["artifacts"]["v1"].parent
    stale = folder / ".pending-0123abcd.skops"
    stale.write_bytes(b"x" * 10)
    old = time.time() - retention.PENDING_GRACE_SECONDS - 60
    os.utime(stale, (old, old))
    fresh = folder / ".pending-4567cdef.skops"  # a training writing its model now
    fresh.write_bytes(b"x")
    ahead = folder / "v10-89abcdef.skops"  # a registration in flight
    ahead.write_bytes(b"x")

    def crash(self: Path, missing_ok: bool = False) -> None:
        raise KeyboardInterrupt("killed after the commit")

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(KeyboardInterrupt):
        retention.collect(history, "news", actor="test")
    monkeypatch.undo()
    assert all(before["artifacts"][name].exists() for name in REMOVED)  # files left behind
    with history.read() as session:
        assert {m.name for m in _versions(session)}.isdisjoint(REMOVED)  # rows gone

    report = retention.collect(history, "news", actor="test")
    assert report["removed"] == []
    swept = {Path(o["path"]).name for o in report["orphans"]}
    assert swept == {before["artifacts"][n].name for n in REMOVED} | {stale.name}
    assert not any(before["artifacts"][n].exists() for n in REMOVED) and not stale.exists()
    assert fresh.exists() and ahead.exists()


def test_auto_gc_queues_a_gc_job_after_each_training(store: Store, tmp_path: Path) -> None:
    from looplab import worker
    from looplab.core.settings import Settings
    from looplab.core.tables import Job

    with store.write() as session:
        add_text_project(session, n=120)
    train(store, tmp_path)
    with store.read() as session:  # off by default: only `looplab gc` removes versions
        assert session.scalar(select(func.count()).where(Job.kind == "gc")) == 0
    for _ in range(3):
        train(store, tmp_path, auto_gc=True, keep_candidates=1)
    with store.read() as session:
        assert session.scalar(select(func.count()).where(Job.kind == "gc")) == 1  # not twice
    worker.drain(store, Settings(home=tmp_path))
    with store.read() as session:
        assert [m.name for m in _versions(session)] == ["v4"]
        removed = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "model.remove")
        ).all()
        assert [d["version"] for d in removed] == ["v1", "v2", "v3"]
