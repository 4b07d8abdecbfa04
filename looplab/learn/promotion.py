"""Promotion: run the gate on the store's current test records, then promote or roll back, audited.

:func:`run_gate` loads the candidate's and production's artifacts (their SHA-256 checked), scores
both on the **same** current test records and calls :func:`looplab.learn.gate.gate` with the
project's ``gate_*`` settings (validated by :func:`check_settings`). Test records that either model
was trained on (possible after a near-duplicate group moved to the test split) are left out, so
neither is judged on what it memorised. A calibrated version is scored as its held-out metrics
were (:func:`looplab.learn.assess.gate_proba`): cross-fitted, so its ECE is not measured on the
records its calibrator was fitted on.

:func:`promote` refuses a candidate the gate rejects (:class:`GateFailed`, HTTP 409, every reason
listed) unless ``force`` is given with a ``reason``; the stage change, the gate's verdict, and
whether it was forced all go into the audit log in the same transaction. :func:`auto_promote` is
what a training job calls when the project's ``auto_promote`` setting is on: promote only if the
gate passes.

Errors::

    LooplabError
    ├── Invalid     bad gate setting; --force without a reason
    ├── NotFound    unknown version
    └── Conflict    already in production; production changed during the gate;
        │           the candidate's artifact missing, modified (``artifact_integrity``) or
        │           untrusted (a broken *production* artifact fails the gate instead, so a
        │           forced promotion can replace it)
        └── GateFailed   code "gate_failed", details {"version", "reasons"}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from looplab.core import audit, projects
from looplab.core.errors import Conflict, Invalid, LooplabError
from looplab.core.store import Store
from looplab.core.tables import ModelVersion, Project
from looplab.learn import assess, dataset, registry
from looplab.learn.dataset import LabeledSet
from looplab.learn.evaluate import majority_label
from looplab.learn.gate import GATE_METRICS, TESTS, GateResult, gate

log = logging.getLogger("looplab.learn.promotion")

#: The gate's settings and their kinds: "metric" and "test" are names, the rest numbers (or None).
GATE_SETTINGS: dict[str, tuple[str, ...] | str] = {
    "gate_metric": GATE_METRICS,
    "gate_test": TESTS,
    "gate_min_gain": "fraction",
    "gate_tolerance": "fraction",
    "gate_alpha": "probability",
    "gate_slice_tolerance": "fraction",
    "gate_min_slice_size": "count",
    "gate_max_ece": "fraction_or_none",
    "gate_max_ece_increase": "fraction_or_none",
    "gate_min_accuracy": "fraction_or_none",
    "gate_min_class_recall": "fraction_or_none",
}


class GateFailed(Conflict):
    """The gate rejected the candidate; ``details["reasons"]`` lists every failed check."""

    default_code = "gate_failed"


def _mismatch(metric: Any, test: Any) -> bool:
    """McNemar's test compares which records each model gets right: accuracy, and nothing else.

    ``auto`` is not a mismatch: when it resolves to another metric the gate uses the paired
    bootstrap and says so in a note (:func:`looplab.learn.gate.resolve_metric`).
    """
    return test == "mcnemar" and metric not in ("accuracy", "auto")


def check_settings(changes: dict[str, Any], current: dict[str, Any] | None = None) -> None:
    """Raise :class:`Invalid` naming the first bad ``gate_*`` or ``calibration`` value.

    ``current`` holds the project's settings before ``changes``: a change of ``gate_metric`` or
    ``gate_test`` is checked against the other one as it will be stored, so the pair cannot be
    made unusable one key at a time.
    """
    if "calibration" in changes and changes["calibration"] not in assess.CALIBRATION_SETTINGS:
        raise Invalid(
            f"calibration must be one of {', '.join(assess.CALIBRATION_SETTINGS)}",
            details={"field": "calibration", "value": changes["calibration"]},
        )
    for key, kind in GATE_SETTINGS.items():
        if key not in changes:
            continue
        value = changes[key]
        where = {"field": key, "value": value}
        if isinstance(kind, tuple):
            if value not in kind:
                raise Invalid(f"{key} must be one of {', '.join(kind)}", details=where)
            continue
        if value is None and kind == "fraction_or_none":
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "count":
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise Invalid(f"{key} must be an integer >= 1", details=where)
        elif kind == "probability":
            if not (number and 0 < value < 1):
                raise Invalid(f"{key} must be a number between 0 and 1 (exclusive)", details=where)
        elif not (number and 0 <= value <= 1):
            hint = " or null" if kind == "fraction_or_none" else ""
            raise Invalid(f"{key} must be a number from 0 to 1{hint}", details=where)
    if "gate_metric" not in changes and "gate_test" not in changes:
        return
    pair = {**(current or {}), **changes}
    metric, test = pair.get("gate_metric", "auto"), pair.get("gate_test", "bootstrap")
    if _mismatch(metric, test):
        field = "gate_test" if "gate_test" in changes else "gate_metric"
        other = "gate_metric" if field == "gate_test" else "gate_test"
        stored = "" if other in changes else f" (the project's {other})"
        raise Invalid(
            f"gate_metric={metric} cannot be gated with gate_test=mcnemar{stored}: McNemar's "
            f"test compares accuracy (which records each model gets right), not {metric}. Use "
            f"gate_test=bootstrap with gate_metric={metric}, or gate_metric=accuracy with "
            "gate_test=mcnemar",
            details={"field": field, "gate_metric": metric, "gate_test": test},
        )


def gate_options(project: Project) -> tuple[dict[str, Any], list[str]]:
    """The project's gate settings as keyword arguments of :func:`looplab.learn.gate.gate`, and
    notes.

    A project may still hold ``gate_test=mcnemar`` with a metric other than accuracy, stored
    before :func:`check_settings` compared the pair with the stored settings. Such a project has
    been gated with the paired bootstrap all along, so the gate keeps doing that rather than fail:
    refusing now would stop a working ``auto_promote`` with no new information, and the bootstrap
    is the test that fits the metric. The correction is logged as a warning and returned as a
    note, which ``looplab gate`` prints and the report shows, with the command that makes it
    explicit.
    """
    options = {key[len("gate_") :]: projects.setting(project, key) for key in GATE_SETTINGS}
    notes = []
    if _mismatch(options["metric"], options["test"]):
        options["test"] = "bootstrap"
        note = (
            f"Project {project.name!r} has gate_test=mcnemar with gate_metric={options['metric']}"
            ", which McNemar's test cannot compare (it compares accuracy): the paired bootstrap "
            f"was used instead. Make it explicit: looplab config {project.name} "
            "gate_test=bootstrap."
        )
        log.warning("%s", note)
        notes.append(note)
    return options, notes


@dataclass(frozen=True)
class GateReport:
    """A gate verdict with what it was run on."""

    project: str
    candidate: str
    production: str | None
    production_id: int | None
    n_test: int
    excluded: int
    options: dict[str, Any]
    result: GateResult

    @property
    def passed(self) -> bool:
        return self.result.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "candidate": self.candidate,
            "production": self.production,
            "passed": self.result.passed,
            "reasons": list(self.result.reasons),
            "n_test": self.n_test,
            "excluded_trained_on": self.excluded,
            "settings": dict(self.options),
            "metric": self.result.metric,
            "baseline": None if self.result.baseline is None else dict(self.result.baseline),
            "checks": [dict(c) for c in self.result.checks],
            "notes": list(self.result.notes),
            "candidate_metrics": dict(self.result.candidate),
            "production_metrics": (
                None if self.result.production is None else dict(self.result.production)
            ),
        }


def load_version(session: Session, row: ModelVersion) -> Any:
    """Load a version's artifact; a missing or modified file is a clear :class:`Conflict`.

    The gate answers 409 with ``artifact_missing`` or ``artifact_integrity`` (a modified,
    untrusted or unreadable file): promoting that version is what is refused, not the service.
    """
    try:
        return registry.load(session, row)
    except registry.ModelUnavailable as exc:
        code = "artifact_missing" if exc.details["reason"] == "missing" else "artifact_integrity"
        raise Conflict(exc.message, code=code, details=exc.details) from None


def _scored(
    row: ModelVersion, model: Any, payloads: list[dict[str, Any]], record_ids: list[int]
) -> tuple[NDArray[np.float64], list[str], str | None]:
    """A version's probabilities on the gate's records, its classes, and a note if optimistic."""
    calibration = (row.config or {}).get("calibration")
    proba, honest = assess.gate_proba(model, payloads, record_ids, calibration)
    note = (
        None
        if honest
        else f"{row.name} was trained before calibrators were cross-fitted: its ECE here may "
        "include test records its calibrator was fitted on, so it is optimistic."
    )
    return proba, [str(c) for c in model.classes_], note


@dataclass(frozen=True)
class _GateRecords:
    """The test records the gate scores: those neither model was trained on."""

    keep: list[int]
    payloads: list[dict[str, Any]]
    labels: NDArray[Any]
    meta: list[dict[str, Any]]
    record_ids: list[int]


def _gate_records(
    session: Any,
    project: Project,
    candidate: ModelVersion,
    current: ModelVersion | None,
    test: LabeledSet,
) -> _GateRecords:
    """Leave out the test records either model was trained on; :class:`Conflict` if none is left."""
    trained_on = set(registry.training_annotations(session, candidate))
    if current is not None:
        trained_on |= set(registry.training_annotations(session, current))
    keep = [i for i, ids in enumerate(test.annotation_ids) if not trained_on.intersection(ids)]
    if not keep:
        raise Conflict(
            f"project {project.name!r} has no labeled test records the models were not trained "
            "on; label more records before gating",
            details={"project": project.name},
        )
    return _GateRecords(
        keep=keep,
        payloads=[test.payloads[i] for i in keep],
        labels=np.asarray([test.labels[i] for i in keep]),
        meta=[test.meta[i] for i in keep],
        record_ids=[test.record_ids[i] for i in keep],
    )


def _refused_for_broken_production(result: GateResult, broken: str) -> GateResult:
    """``result`` failed, first reason: production's artifact cannot be loaded."""
    message = (
        f"production cannot be loaded, so the candidate was not compared with it ({broken}); "
        "promote with --force and a reason to replace it"
    )
    check = {"name": "production", "value": 0.0, "threshold": 0.0, "passed": False}
    return replace(
        result,
        passed=False,
        reasons=[message, *result.reasons],
        checks=[{**check, "message": message}, *result.checks],
    )


def _majority(candidate: ModelVersion) -> str | None:
    """The label the candidate saw most in training (the majority baseline answers it)."""
    counts = (candidate.config or {}).get("train_label_counts") or {}
    return majority_label(counts) if counts else None


def run_gate(
    session: Any,
    project: Project,
    candidate: ModelVersion,
    *,
    rng: int = 0,
    test: LabeledSet | None = None,
    candidate_proba: NDArray[np.float64] | None = None,
) -> GateReport:
    """Compare ``candidate`` with production on the current test records (see the module doc).

    The training job (with ``auto_promote``) passes the ``test`` split it has just assessed the
    candidate on and the candidate's cross-fitted probabilities on it (``candidate_proba``, one
    row per record of ``test``), so the labeled set is not built again and the artifact just
    written is not loaded back. Without them the current test split is built and the candidate's
    artifact loaded (its SHA-256 checked).
    """
    current = registry.production(session, project)
    if current is not None and current.id == candidate.id:
        raise Conflict(
            f"{candidate.name} is already in production; gate a candidate against it",
            details={"model": candidate.name},
        )
    if candidate_proba is not None and (test is None or len(candidate_proba) != len(test)):
        raise ValueError("candidate_proba needs the test split it was computed on, a row a record")
    if test is None:
        test = dataset.labeled_set(session, project).subset("test").expanded()
    rec = _gate_records(session, project, candidate, current, test)
    notes: list[str | None] = []
    if candidate_proba is None:
        model_c = load_version(session, candidate)
        proba_c, classes_c, note = _scored(candidate, model_c, rec.payloads, rec.record_ids)
        notes.append(note)
    else:
        proba_c, classes_c = (
            candidate_proba[rec.keep],
            [str(c) for c in candidate.config["classes"]],
        )
    proba_p, classes_p, broken = None, None, None
    if current is not None:
        try:
            model_p = load_version(session, current)
        except Conflict as exc:  # production is unusable: say so, and let --force replace it
            broken = exc.message
        else:
            proba_p, classes_p, note = _scored(current, model_p, rec.payloads, rec.record_ids)
            notes.append(note)
    options, setting_notes = gate_options(project)
    result = gate(
        rec.labels, proba_c, proba_p, classes_c, classes_p,
        slice_keys=rec.meta, majority=_majority(candidate), rng=rng, **options,
    )  # fmt: skip
    extra = [*setting_notes, *(n for n in notes if n)]
    if extra:
        result = replace(result, notes=[*result.notes, *extra])
    if broken is not None:
        result = _refused_for_broken_production(result, broken)
    return GateReport(
        project=project.name,
        candidate=candidate.name,
        production=None if current is None else current.name,
        production_id=None if current is None else current.id,
        n_test=len(rec.keep),
        excluded=len(test) - len(rec.keep),
        options=options,
        result=result,
    )


def _gate_audit(report: GateReport) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "against": report.production,
        "n_test": report.n_test,
        "reasons": list(report.result.reasons),
    }


def promote(
    session: Any,
    project: Project,
    candidate: ModelVersion,
    report: GateReport,
    *,
    actor: str,
    force: bool = False,
    reason: str = "",
) -> ModelVersion | None:
    """Promote ``candidate`` given its gate ``report``; return the version it replaced.

    Raises :class:`GateFailed` when the gate failed and ``force`` is off, :class:`Invalid` when
    ``force`` comes without a reason, :class:`Conflict` when production changed since the gate.
    """
    reason = reason.strip()
    if force and not reason:
        raise Invalid(
            "a forced promotion needs a reason (--reason '...'); it is kept in the audit log",
            details={"field": "reason"},
        )
    current = registry.production(session, project)
    if (None if current is None else current.id) != report.production_id:
        raise Conflict(
            f"production of {project.name!r} changed while the gate ran; run it again",
            details={"project": project.name},
        )
    if not report.passed and not force:
        raise GateFailed(
            f"the gate refuses {candidate.name}: " + " ".join(report.result.reasons),
            details={"version": candidate.name, "reasons": list(report.result.reasons)},
        )
    return registry.promote(
        session,
        project,
        candidate,
        actor=actor,
        reason=reason or "gate passed",
        forced=force and not report.passed,
        gate=_gate_audit(report),
    )


def promote_version(
    store: Store,
    project_name: str,
    version: str,
    *,
    actor: str,
    force: bool = False,
    reason: str = "",
) -> dict[str, Any]:
    """Gate (in a read transaction), then promote (in a write one); the CLI and the API call it."""
    if force and not reason.strip():
        raise Invalid(
            "a forced promotion needs a reason (--reason '...'); it is kept in the audit log",
            details={"field": "reason"},
        )
    with store.read() as session:
        project = projects.get_project(session, project_name)
        report = run_gate(session, project, registry.get_version(session, project, version))
    with store.write() as session:
        project = projects.get_project(session, project_name)
        candidate = registry.get_version(session, project, version)
        previous = promote(
            session, project, candidate, report, actor=actor, force=force, reason=reason
        )
        return {
            "promoted": candidate.name,
            "previous": None if previous is None else previous.name,
            "forced": force and not report.passed,
            "gate": report.to_dict(),
        }


def rollback_project(store: Store, project_name: str, *, actor: str, reason: str = "") -> dict:
    """Put the previous production version back (audited)."""
    with store.write() as session:
        project = projects.get_project(session, project_name)
        current = registry.production(session, project)
        target = registry.rollback(session, project, actor=actor, reason=reason)
        return {
            "production": target.name,
            "rolled_back": None if current is None else current.name,
        }


def auto_promote(
    store: Store,
    project_id: int,
    version: str,
    *,
    actor: str,
    test: LabeledSet | None = None,
    candidate_proba: NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """After training with ``auto_promote`` on: promote ``version`` only if the gate passes.

    A refusal is audited (``model.gate_refused``) with its reasons, so "why is v7 not live?" has an
    answer in the log. ``test`` and ``candidate_proba`` are what the training job already has
    (see :func:`run_gate`).
    """
    with store.read() as session:
        project = session.get(Project, project_id)
        if project is None:
            return {"promoted": False, "reasons": ["project no longer exists"]}
        candidate = registry.get_version(session, project, version)
        try:
            report = run_gate(
                session, project, candidate, test=test, candidate_proba=candidate_proba
            )
        except LooplabError as exc:  # e.g. no test records yet: not promoted, the job succeeds
            return {"promoted": False, "reasons": [exc.message]}
    with store.write() as session:
        project = session.get(Project, project_id)
        assert project is not None
        candidate = registry.get_version(session, project, version)
        if not report.passed:
            audit.record(
                session,
                actor=actor,
                action="model.gate_refused",
                entity_type="model",
                entity_id=candidate.id,
                project_id=project.id,
                details={"version": candidate.name, **_gate_audit(report)},
            )
            return {"promoted": False, "reasons": list(report.result.reasons)}
        try:
            promote(
                session, project, candidate, report, actor=actor, reason="auto_promote: gate passed"
            )
        except Conflict as exc:  # production moved meanwhile: leave it to a person
            return {"promoted": False, "reasons": [exc.message]}
        return {"promoted": True, "against": report.production}
