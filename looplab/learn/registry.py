"""The model registry: versions, their artifacts (skops + SHA-256), metrics and lineage."""

from __future__ import annotations

import secrets
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab.core import audit, jobs, projects
from looplab.core.errors import Conflict, NotFound, Unavailable
from looplab.core.tables import (
    Annotation,
    ModelVersion,
    Project,
    StageChange,
    TrainingLabel,
    version_name,
)
from looplab.learn import lineage


class ModelUnavailable(Unavailable):
    """A version's model file is missing, modified, untrusted or unreadable."""

    default_code = "model_unavailable"


def artifacts_dir(session: Session) -> Path:
    """The folder model artifacts are stored under (the store's; see :class:`Store`)."""
    return Path(session.info.get("artifacts_dir") or "artifacts")


def pending_artifact_path(session: Session, project: Project) -> Path:
    """Where a new model is written before its version number is known (see :func:`name_artifact`).

    Writing a model file takes seconds; it happens before the registering transaction, so that
    transaction (which holds SQLite's write lock) stays short.
    """
    return artifacts_dir(session) / project.name / f".pending-{secrets.token_hex(8)}.skops"


def name_artifact(pending: Path, version: int) -> Path:
    """Give a pending artifact its version's name; the random part is kept, so two attempts at
    one version (a worker that lost its lease and the one that took its job over) never write
    or rename onto the same file, and a registered version's file is never replaced."""
    token = pending.stem.removeprefix(".pending-")
    final = pending.with_name(f"{version_name(version)}-{token}.skops")
    pending.rename(final)
    return final


def stored_artifact(session: Session, path: Path) -> str:
    """How ``path`` is stored: relative to the artifacts folder when it lies below it."""
    try:
        return PurePosixPath(
            path.resolve().relative_to(artifacts_dir(session).resolve())
        ).as_posix()
    except ValueError:
        return str(path)


def artifact_file(session: Session, model: ModelVersion) -> Path:
    """The file of ``model``'s artifact in this workspace."""
    path = Path(model.artifact)
    return path if path.is_absolute() else artifacts_dir(session) / path


def load_artifact(path: Path, sha256: str, *, project: str, model: str) -> Any:
    """Load an artifact (its SHA-256 and types checked) or raise :class:`ModelUnavailable`.

    The error names the version and the reason: ``missing``, ``modified`` (digest mismatch),
    ``untrusted`` (types outside the trusted packages) or ``unreadable`` (not a model file).
    """
    from looplab.learn import train

    try:
        return train.load_model(path, sha256)
    except FileNotFoundError:
        reason, why = "missing", f"its model file is missing ({path})"
    except train.ModelIntegrityError as exc:
        reason, why = "modified", str(exc)
    except train.UntrustedModelError as exc:
        reason, why = "untrusted", str(exc)
    except Exception as exc:  # a truncated zip, a file of another format, a read error
        reason, why = "unreadable", f"its file {str(path)!r} cannot be read: {exc}"
    raise ModelUnavailable(
        f"model {model} of project {project!r} cannot be loaded: {why}; restore the file from "
        "a backup, or train and promote another version",
        details={"project": project, "model": model, "reason": reason, "artifact": str(path)},
    )


def load(session: Session, model: ModelVersion) -> Any:
    """Load ``model``'s artifact, or raise :class:`ModelUnavailable` saying why not."""
    project = session.get(Project, model.project_id)
    return load_artifact(
        artifact_file(session, model),
        model.sha256,
        project=project.name if project is not None else str(model.project_id),
        model=model.name,
    )


def next_version(session: Session, project: Project) -> int:
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.project_id == project.id)
    )
    return (latest or 0) + 1


def register(
    session: Session,
    project: Project,
    *,
    version: int,
    artifact: Path,
    sha256: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    train_annotations: list[int] | dict[int, int],
    test_annotations: list[int] | dict[int, int],
    actor: str,
    job_id: int | None = None,
) -> ModelVersion:
    """Record a trained version with the exact annotations it saw, in the caller's transaction.

    Given as a dict, each annotation comes with the rows it stood for (its lineage weight).
    """
    train_weights = train_annotations if isinstance(train_annotations, dict) else {}
    test_weights = test_annotations if isinstance(test_annotations, dict) else {}
    model = ModelVersion(
        project_id=project.id,
        version=version,
        stage="candidate",
        artifact=stored_artifact(session, artifact),
        sha256=sha256,
        config=config,
        metrics=metrics,
        n_train=len(train_annotations),
        n_test=len(test_annotations),
        job_id=job_id,
        created_by=actor,
    )
    session.add(model)
    session.flush()
    seen: dict[int, tuple[str, int | None]] = {
        a: (split, weights.get(a))
        for split, ids, weights in (
            ("test", test_annotations, test_weights),
            ("train", train_annotations, train_weights),
        )
        for a in ids
    }
    lineage.record(session, model, seen)
    audit.record(
        session,
        actor=actor,
        action="model.register",
        entity_type="model",
        entity_id=model.id,
        project_id=project.id,
        details={
            "version": model.name,
            "sha256": sha256,
            "n_train": model.n_train,
            "n_test": model.n_test,
            "metrics": {k: metrics.get(k) for k in ("accuracy", "macro_f1", "ece")},
        },
    )
    if projects.setting(project, "auto_gc"):  # retention: see looplab.learn.retention
        jobs.enqueue(session, "gc", project_id=project.id)
    return model


def latest(session: Session, project: Project) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )


def list_versions(session: Session, project: Project) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.project_id == project.id)
            .order_by(ModelVersion.version)
        )
    )


def get_version(session: Session, project: Project, name: str) -> ModelVersion:
    number = name[1:] if name.startswith("v") else name
    model = None
    # isascii: "٣".isdigit() is true too; the length keeps int() within what the column holds.
    if number.isascii() and number.isdigit() and len(number) <= 18:
        model = session.scalar(
            select(ModelVersion).where(
                ModelVersion.project_id == project.id, ModelVersion.version == int(number)
            )
        )
    if model is None:
        raise NotFound(
            f"no model {name!r} in project {project.name!r}",
            details={"model": name, "project": project.name},
        )
    return model


def models_taught_by(session: Session, annotation_id: int) -> list[ModelVersion]:
    """Lineage the other way: every version an annotation was trained on."""
    return list(
        session.scalars(
            select(ModelVersion)
            .join(TrainingLabel, TrainingLabel.model_id == ModelVersion.id)
            .where(TrainingLabel.annotation_id == annotation_id, TrainingLabel.split == "train")
            .order_by(ModelVersion.version)
        )
    )


def training_annotations(session: Session, model: ModelVersion, split: str = "train") -> list[int]:
    return list(
        session.scalars(
            select(TrainingLabel.annotation_id)
            .join(Annotation, Annotation.id == TrainingLabel.annotation_id)
            .where(TrainingLabel.model_id == model.id, TrainingLabel.split == split)
            .order_by(TrainingLabel.annotation_id)
        )
    )


def production(session: Session, project: Project) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.stage == "production"
        )
    )


def _move(
    session: Session,
    model: ModelVersion,
    to: str,
    *,
    actor: str,
    reason: str,
    forced: bool,
    gate: dict[str, Any] | None = None,
) -> None:
    session.add(
        StageChange(
            project_id=model.project_id,
            model_id=model.id,
            from_stage=model.stage,
            to_stage=to,
            actor=actor,
            reason=reason,
            forced=forced,
        )
    )
    audit.record(
        session,
        actor=actor,
        action=f"model.{to}",
        entity_type="model",
        entity_id=model.id,
        project_id=model.project_id,
        details={
            "version": model.name,
            "from": model.stage,
            "to": to,
            "reason": reason,
            "forced": forced,
            **({"gate": gate} if gate is not None else {}),
        },
    )
    model.stage = to


def promote(
    session: Session,
    project: Project,
    model: ModelVersion,
    *,
    actor: str,
    reason: str = "",
    forced: bool = False,
    gate: dict[str, Any] | None = None,
) -> ModelVersion | None:
    """Make ``model`` the production version; the previous one is archived and returned.

    The gate is the caller's job (``looplab.learn.promotion``); this only moves stages, audited,
    with the gate's verdict (``gate``) in the audit event when given.
    """
    if model.stage == "production":
        raise Conflict(f"{model.name} is already in production", details={"model": model.name})
    previous = production(session, project)
    if previous is not None:
        _move(
            session,
            previous,
            "archived",
            actor=actor,
            reason=f"replaced by {model.name}",
            forced=False,
        )
    _move(session, model, "production", actor=actor, reason=reason, forced=forced, gate=gate)
    session.flush()
    return previous


def rollback(session: Session, project: Project, *, actor: str, reason: str = "") -> ModelVersion:
    """Put back the version that was in production before the current one."""
    current = production(session, project)
    if current is None:
        raise Conflict(f"project {project.name!r} has no production model to roll back")
    earlier = session.scalars(
        select(StageChange)
        .where(
            StageChange.project_id == project.id,
            StageChange.to_stage == "production",
            StageChange.model_id != current.id,
        )
        .order_by(StageChange.id.desc())
    ).first()
    if earlier is None:
        raise Conflict(f"no earlier production version of {project.name!r} to roll back to")
    target = session.get(ModelVersion, earlier.model_id)
    assert target is not None
    _move(session, current, "archived", actor=actor, reason=reason or "rolled back", forced=False)
    _move(
        session,
        target,
        "production",
        actor=actor,
        reason=reason or f"rollback from {current.name}",
        forced=False,
    )
    session.flush()
    return target


def history(session: Session, project: Project) -> list[StageChange]:
    return list(
        session.scalars(
            select(StageChange).where(StageChange.project_id == project.id).order_by(StageChange.id)
        )
    )
