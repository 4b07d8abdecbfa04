"""Retention: which model versions a project keeps, and ``looplab gc``, which removes the rest.

A version is kept when any of these holds (each kept version lists its reasons):

* ``production``: it serves now;
* ``previous production``: the version a rollback would put back;
* ``latest``: the newest version scores the pool, and its number must never be given again
  (lineage runs and suggestions name versions by number);
* ``recent candidate``: one of the ``keep_candidates`` newest candidates (the project setting);
* ``audit``: an audit event names it other than its own registration: a stage change (so every
  version that ever served), a gate refusal (the log says why it is not live; its artifact lets
  anyone check), a reference profile, or another event whose details name it (``"v7"``);
* ``suggestion``: records still show its guess to people (``records.pred_model``);
* ``predictions``: it served predictions (kept with the monitor windows that judge them).

Model cards are generated when asked for, never stored: a kept version's card names only
itself and the production version, both kept. Lineage needs no parent either: each version's
runs name it directly (:mod:`looplab.learn.lineage`), so removing a version never changes the
lineage of another.

Removal is one write transaction (rows, their stage history and drift reference by cascade,
lineage runs that cover no version left, one ``model.remove`` audit event per version); the
artifact files are removed after it commits. A crash in between leaves files no version names:
each run removes such orphans from the project's artifact folder too (a ``vN-*.skops`` file no
row names, N not above the newest version; a ``.pending-*`` file older than a day, from a
training that died before registering).

``looplab gc`` and ``POST .../gc`` run it when asked; with the project setting ``auto_gc`` every
training queues a ``gc`` job (:func:`run_job`) in the transaction that registers its version.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from looplab.core import audit, jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store, lock_rows
from looplab.core.tables import (
    AuditEvent,
    Job,
    ModelVersion,
    Prediction,
    Project,
    Record,
    StageChange,
    version_name,
)
from looplab.learn import lineage, registry

#: A ``.pending-*`` artifact this old belongs to a training that died before registering.
PENDING_GRACE_SECONDS = 24 * 3600
#: Audit actions that do not keep a version: its own registration (every version has one) and
#: the record of its removal.
_NOT_KEEPING = ("model.register", "model.remove")
_VERSION_NAME = re.compile(r"v[0-9]{1,18}")
_ARTIFACT_NAME = re.compile(r"v([0-9]{1,18})(-[0-9a-f]+)?\.skops")


@dataclass
class Plan:
    """What a gc run keeps (with why) and removes, before anything is written."""

    project: str
    keep_candidates: int
    kept: dict[str, list[str]] = field(default_factory=dict)
    remove: list[ModelVersion] = field(default_factory=list)


def plan(session: Session, project: Project, *, lock: bool = False) -> Plan:
    """The versions of ``project`` retention keeps, each with its reasons, and the rest.

    ``lock`` holds the project's version rows until commit (PostgreSQL), so a promotion cannot
    move a version between this decision and its removal.
    """
    query = select(ModelVersion).where(ModelVersion.project_id == project.id)
    if lock:
        query = lock_rows(session, query)
    versions = list(session.scalars(query.order_by(ModelVersion.version)))
    keep_n = int(projects.setting(project, "keep_candidates"))
    reasons: dict[int, list[str]] = {m.id: [] for m in versions}
    for model_id, reason in _keepers(session, project, versions, keep_n):
        if model_id in reasons and reason not in reasons[model_id]:
            reasons[model_id].append(reason)
    out = Plan(project=project.name, keep_candidates=keep_n)
    for model in versions:
        if reasons[model.id]:
            out.kept[model.name] = reasons[model.id]
        elif _served(session, project, model):
            out.kept[model.name] = ["predictions"]
        else:
            out.remove.append(model)
    return out


def _keepers(
    session: Session, project: Project, versions: list[ModelVersion], keep_n: int
) -> list[tuple[int, str]]:
    """(model id, reason) for every reason to keep a version that needs no per-version query."""
    out: list[tuple[int, str]] = []
    if versions:
        out.append((versions[-1].id, "latest"))
    current = next((m for m in versions if m.stage == "production"), None)
    if current is not None:
        out.append((current.id, "production"))
    earlier = session.scalar(
        select(StageChange.model_id)
        .where(
            StageChange.project_id == project.id,
            StageChange.to_stage == "production",
            StageChange.model_id != (current.id if current is not None else -1),
        )
        .order_by(StageChange.id.desc())
        .limit(1)
    )
    if earlier is not None:
        out.append((earlier, "previous production"))
    candidates = [m for m in versions if m.stage == "candidate"]
    out += [(m.id, "recent candidate") for m in candidates[max(0, len(candidates) - keep_n) :]]
    by_name = {m.name: m.id for m in versions}
    out += [(by_name[name], "audit") for name in _named_by_audit(session, project, by_name)]
    shown = session.scalars(
        select(Record.pred_model)
        .where(Record.project_id == project.id, Record.pred_model.is_not(None))
        .distinct()
    )
    out += [(by_name[n], "suggestion") for n in map(version_name, shown) if n in by_name]
    return out


def _named_by_audit(session: Session, project: Project, by_name: dict[str, int]) -> set[str]:
    """Names of ``project``'s versions an audit event names (other than its registration)."""
    ids = {str(i): name for name, i in by_name.items()}
    named: set[str] = set()
    events = session.execute(
        select(AuditEvent.action, AuditEvent.entity_type, AuditEvent.entity_id, AuditEvent.details)
        .where(AuditEvent.project_id == project.id, AuditEvent.action.not_in(_NOT_KEEPING))
        .execution_options(yield_per=2000)
    ).tuples()
    for _action, entity_type, entity_id, details in events:
        if entity_type == "model" and entity_id in ids:
            named.add(ids[entity_id])
        named.update(n for n in _names_in(details) if n in by_name)
    return named


def _names_in(details: Any) -> set[str]:
    """Version names (``"v7"``) among the values of an event's details, one level deep."""
    if not isinstance(details, dict):
        return set()
    values = list(details.values())
    values += [v for d in values if isinstance(d, dict) for v in d.values()]
    return {v for v in values if isinstance(v, str) and _VERSION_NAME.fullmatch(v)}


def _served(session: Session, project: Project, model: ModelVersion) -> bool:
    """Whether ``model`` served a prediction (one index seek)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Prediction.project_id == project.id,
                    Prediction.model_version == model.version,
                )
            )
        )
    )


@dataclass
class _Removed:
    name: str
    stage: str
    file: Path | None
    size: int


def collect(
    store: Store, project_name: str, *, actor: str, dry_run: bool = False
) -> dict[str, Any]:
    """Remove ``project_name``'s versions retention does not keep, then their files; a report.

    ``dry_run`` writes nothing and removes nothing: the report says what a run would do.
    """
    opened = store.read() if dry_run else store.write()
    with opened as session:
        project = projects.get_project(session, project_name)
        decided = plan(session, project, lock=not dry_run)
        removed = [_describe(session, m) for m in decided.remove]
        pruned = 0 if dry_run else _remove(session, project, decided, removed, actor=actor)
        folder = registry.artifacts_dir(session) / project.name
        named = {registry.artifact_file(session, m).resolve() for m in _remaining(session, project)}
        newest = max((int(n[1:]) for n in decided.kept), default=0)
    # After the commit: a crash from here on leaves orphan files, which the next run removes.
    if not dry_run:
        for item in removed:
            if item.file is not None:
                item.file.unlink(missing_ok=True)
    orphans = _orphans(folder, named, newest, exclude={r.file for r in removed})
    if not dry_run:
        for path, _ in orphans:
            path.unlink(missing_ok=True)
    if not dry_run and (removed or orphans):
        store.checkpoint()
    return _report(decided, removed, orphans, pruned=pruned, dry_run=dry_run)


def run_job(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """The ``gc`` job (queued after a training when ``auto_gc`` is on): :func:`collect`."""
    with store.read() as session:
        name = jobs.project_of(session, job).name
    report = collect(store, name, actor=job.params.get("actor", "retention"))
    return {k: report[k] for k in ("removed", "orphans", "lineage_runs_pruned", "bytes_freed")}


def _describe(session: Session, model: ModelVersion) -> _Removed:
    """A version about to go: its file, when it lies in the artifacts folder, and its size."""
    path = registry.artifact_file(session, model).resolve()
    inside = path.is_relative_to(registry.artifacts_dir(session).resolve())
    size = path.stat().st_size if inside and path.is_file() else 0
    return _Removed(model.name, model.stage, path if inside else None, size)


def _remove(
    session: Session, project: Project, decided: Plan, removed: list[_Removed], *, actor: str
) -> int:
    """Delete the planned versions (cascading to their stage history and reference), audited;
    then the lineage runs no version is left in. Returns how many runs were pruned."""
    for model, item in zip(decided.remove, removed, strict=True):
        audit.record(
            session,
            actor=actor,
            action="model.remove",
            entity_type="model",
            entity_id=model.id,
            project_id=project.id,
            details={
                "version": model.name,
                "stage": model.stage,
                "sha256": model.sha256,
                "artifact": model.artifact,
                "bytes": item.size,
                "n_train": model.n_train,
                "n_test": model.n_test,
                "reason": f"retention (keep_candidates={decided.keep_candidates})",
            },
        )
    ids = [m.id for m in decided.remove]
    if ids:
        session.execute(
            delete(ModelVersion)
            .where(ModelVersion.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return lineage.prune(session, project.id)


def _remaining(session: Session, project: Project) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).where(ModelVersion.project_id == project.id)))


def _orphans(
    folder: Path, named: set[Path], newest: int, *, exclude: set[Path | None]
) -> list[tuple[Path, int]]:
    """Artifact files in ``folder`` no version names (see the module docstring), with sizes."""
    if not folder.is_dir():
        return []
    now = time.time()
    out = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.resolve() in named or path.resolve() in exclude:
            continue
        stat = path.stat()
        version = _ARTIFACT_NAME.fullmatch(path.name)
        stale_pending = (
            path.name.startswith(".pending-")
            and path.suffix == ".skops"
            and now - stat.st_mtime > PENDING_GRACE_SECONDS
        )
        # A vN file above the newest committed version may be a registration in flight.
        if stale_pending or (version is not None and int(version.group(1)) <= newest):
            out.append((path, stat.st_size))
    return out


def _report(
    decided: Plan,
    removed: list[_Removed],
    orphans: list[tuple[Path, int]],
    *,
    pruned: int,
    dry_run: bool,
) -> dict[str, Any]:
    freed = sum(r.size for r in removed) + sum(size for _, size in orphans)
    return {
        "project": decided.project,
        "dry_run": dry_run,
        "keep_candidates": decided.keep_candidates,
        "kept": [{"version": name, "reasons": why} for name, why in decided.kept.items()],
        "removed": [
            {"version": r.name, "stage": r.stage, "artifact": str(r.file or ""), "bytes": r.size}
            for r in removed
        ],
        "orphans": [{"path": str(p), "bytes": size} for p, size in orphans],
        "lineage_runs_pruned": pruned,
        "bytes_freed": freed,
    }
