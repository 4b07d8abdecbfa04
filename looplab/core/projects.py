"""Projects: what is being labeled (task, label set, input fields) and how far it has come."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from looplab.core import audit
from looplab.core.errors import Conflict, Invalid, NotFound, did_you_mean
from looplab.core.tables import (
    QUARANTINE_POLICIES,
    TASKS,
    Annotation,
    ImportBatch,
    Project,
    Record,
    User,
)

# fullmatch, never match with "$": "$" also matches before a trailing newline ("news\n").
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")

#: Cells read as missing by default: pandas' default ``na_values``
#: (``pandas._libs.parsers.STR_NA_VALUES``) plus ``?``, which UCI files use.
DEFAULT_NA_VALUES: list[str] = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
    "?",
]

#: Project settings a user may change, with their defaults.
DEFAULT_SETTINGS: dict[str, Any] = {
    "overlap": 1,  # annotators per record for the overlapped fraction
    "overlap_fraction": 0.0,  # share of records that get `overlap` annotators
    # Retraining pace (issue 17; see the README's Learn section): a background retrain needs
    # `retrain_every` new answers AND that many as a share of the latest version's training rows,
    # and never starts while a training job is queued or running (looplab.ask.queue).
    "retrain_every": 50,  # new human labels between background retrains (at least)
    "retrain_min_share": 0.05,  # ...and new labels >= this share of the training set's rows
    # ...and the worker's time spent training in the background at most this share: after a
    # training that took T, the next waits T (1 / share - 1). 0 turns background retraining off.
    "retrain_worker_share": 0.5,
    # Repeated rows (issue 17; README, Collect): what makes two imported rows one record.
    # "content": identical inputs (the record keeps how many rows it stands for and each
    # label's count); "none": every row its own record. `looplab import --id COL` overrides.
    "dedupe": "content",
    "show_suggestions": True,  # show the model's guess (off to avoid anchoring)
    # ...only from a version tested on this many records whose held-out accuracy's 95% interval
    # starts at or above this (see looplab.ask.suggestions)
    "suggest_min_test": 30,
    "suggest_min_accuracy": 0.5,
    "strategy": "margin",
    "estimator": None,  # dotted path of a scikit-learn classifier, or the default pipeline
    "triggers": [],  # monitoring rules: see looplab.watch.triggers
    "auto_promote": False,  # promote each newly trained version that passes the gate
    "webhook_url": None,  # alerts go here (and to the log); the secret is LOOPLAB_WEBHOOK_SECRET
    "monitor_min_predictions": 200,  # a monitor window closes once it holds this many predictions
    # Watch: windows by time, the audit sample, alarm levels (see looplab.watch.periods,
    # looplab.watch.auditing, looplab.watch.levels; checked in looplab.configure).
    "window": "count",  # count (monitor_min_predictions each), or a period: 1h, 1d, 7d, 1M
    "window_time_field": None,  # an input field with the event time, instead of the request's
    "audit_rate": 0.0,  # share of served predictions drawn at random for people to label
    "alarm_margin": 0.03,  # a trusted estimate this far below the reference alarms
    # Calibration of new versions and the promotion gate: see looplab.learn.assess,
    # looplab.learn.promotion.
    "calibration": "auto",  # auto, none, temperature or isotonic (kept only if it lowers ECE)
    "gate_metric": "auto",  # auto (macro_f1 if imbalanced, else accuracy), accuracy, macro_f1,
    # or balanced_accuracy: compared with production and with the majority baseline
    "gate_test": "bootstrap",  # paired test: bootstrap or mcnemar (accuracy only)
    "gate_min_gain": 0.0,  # required significant gain over production (0.01 = 1 point)
    "gate_tolerance": 0.01,  # largest accepted (significant) drop of the metric
    "gate_alpha": 0.05,  # significance level of the paired tests
    "gate_slice_tolerance": 0.05,  # largest accepted significant accuracy drop on a slice
    "gate_min_slice_size": 30,  # fewest test records for a metadata slice to be compared
    "gate_max_ece": 0.1,  # highest accepted ECE of the candidate (null: not checked)
    "gate_max_ece_increase": None,  # highest accepted ECE rise over production (null: off)
    "gate_min_accuracy": None,  # accuracy floor of the candidate (null: off)
    # Column types (looplab.collect.schema): cells equal to one of these (after stripping) are
    # missing, at import as at serving.
    "na_values": list(DEFAULT_NA_VALUES),
    # h18metrics: recall floor on each class production catches (recall >= twice the floor)
    "gate_min_class_recall": 0.1,
    # Trust (README, Trust; looplab.trust.labels): how people's answers become a training label.
    "consensus": "majority",  # majority (one vote per person) or dawid_skene
    # Records whose consensus posterior is below this go to review instead of training (0: off).
    "consensus_min_posterior": 0.0,
    "gold_rate": 0.0,  # share of handed-out records that are gold (known-answer) records
    "quarantine_policy": "flag",  # flag: the reliability check only flags; auto: quarantines
    # New human answers between background reliability checks (0: only `annotators --run`).
    "reliability_every": 200,
    # Retention (README, Capacity > Retention; looplab.learn.retention): `looplab gc` keeps the
    # production version, the one before it, the latest, anything the audit log names or people
    # are shown suggestions from, and this many of the newest candidates.
    "keep_candidates": 3,
    "auto_gc": False,  # queue a gc job after every training (off: only `looplab gc` removes)
}


def create_project(
    session: Session,
    name: str,
    *,
    task: str,
    labels: list[str],
    fields: list[str] | None = None,
    guidelines: str = "",
    actor: str,
) -> Project:
    if not _NAME.fullmatch(name):
        raise Invalid(
            f"invalid project name {name!r}: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit",
            details={"field": "name"},
        )
    if task not in TASKS:
        raise Invalid(
            f"unknown task {task!r}; valid: {', '.join(TASKS)}", details={"field": "task"}
        )
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise Invalid("a project needs at least two labels", details={"field": "labels"})
    if len(set(labels)) != len(labels):
        raise Invalid("labels must be unique", details={"field": "labels", "labels": labels})
    if task == "text":
        fields = fields or ["text"]
    elif not fields:
        fields = []  # tabular: taken from the first import's --fields
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"project {name!r} already exists", details={"name": name})
    project = Project(
        name=name,
        task=task,
        labels=labels,
        fields=list(fields),
        guidelines=guidelines,
        settings=dict(DEFAULT_SETTINGS),
    )
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="project.create",
        entity_type="project",
        entity_id=project.id,
        project_id=project.id,
        details={"name": name, "task": task, "labels": labels, "fields": list(fields)},
    )
    return project


def get_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        names = list(session.scalars(select(Project.name).order_by(Project.name)))
        hint = did_you_mean(name, names, "projects") or (
            "; there is no project yet: create one with `looplab init`" if not names else ""
        )
        raise NotFound(f"no project named {name!r}{hint}", details={"project": name})
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def write_settings(
    session: Session, project: Project, changes: dict[str, Any], *, actor: str
) -> Project:
    """Store ``changes`` (already checked) in ``project``'s settings and audit them.

    Callers go through :func:`looplab.configure.update_settings`, which checks every value,
    including the ones only a stage can judge (a strategy's name, an estimator's path, trigger
    rules, gate thresholds).
    """
    current = current_settings(project)
    project.settings = {**current, **changes}
    audit.record(
        session,
        actor=actor,
        action="project.update_settings",
        entity_type="project",
        entity_id=project.id,
        project_id=project.id,
        details=changes,
    )
    return project


def check_known(changes: dict[str, Any]) -> None:
    """Raise :class:`Invalid` naming settings that do not exist."""
    unknown = sorted(set(changes) - set(DEFAULT_SETTINGS))
    if unknown:
        raise Invalid(
            f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(DEFAULT_SETTINGS)}",
            details={"fields": unknown},
        )


def current_settings(project: Project) -> dict[str, Any]:
    """Every setting of ``project`` with the defaults filled in (what ``looplab config`` shows)."""
    return {**DEFAULT_SETTINGS, **(project.settings or {})}


#: Type and range of settings checked nowhere else. The ranges are the ones the HTTP schema
#: declares (``looplab.api.schemas.SettingsPatch``), so ``looplab config`` and ``PATCH
#: .../settings`` accept and refuse the same values.
_RANGES: dict[str, tuple[int, int]] = {
    "overlap": (1, 20),
    "retrain_every": (1, 10**9),
    "monitor_min_predictions": (10, 10**9),
    "reliability_every": (0, 10**9),
    "keep_candidates": (0, 10**6),
}
_FLAGS = ("show_suggestions", "auto_promote", "auto_gc")
_TEXTS = ("strategy", "estimator", "webhook_url")
#: Settings with a fixed set of values checked nowhere else.
_CHOICES: dict[str, tuple[str, ...]] = {
    "dedupe": ("content", "none"),
    "quarantine_policy": QUARANTINE_POLICIES,
}
#: Shares checked nowhere else, with their highest value (the lowest is 0).
_SHARES: dict[str, float] = {
    "overlap_fraction": 1.0,
    "retrain_min_share": 1.0,
    "retrain_worker_share": 1.0,
    "consensus_min_posterior": 1.0,
    # Above one in two, gold would be most of the queue: people would label little that is new.
    "gold_rate": 0.5,
}


def check_types(changes: dict[str, Any]) -> None:
    def bad(key: str, what: str) -> Invalid:
        return Invalid(f"{key} must be {what}", details={"field": key, "value": changes[key]})

    for key in _FLAGS:
        if key in changes and not isinstance(changes[key], bool):
            raise bad(key, "true or false")
    for key, (low, high) in _RANGES.items():
        value = changes.get(key)
        if key in changes and not (
            isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        ):
            raise bad(key, f"an integer from {low} to {high:,}")
    for key in _TEXTS:
        if changes.get(key) is not None and not isinstance(changes[key], str):
            raise bad(key, "a string or null")
    for key, choices in _CHOICES.items():
        if key in changes and changes[key] not in choices:
            raise bad(key, f"one of {', '.join(choices)}")
    url = changes.get("webhook_url")
    if url and not url.startswith(("http://", "https://")):
        raise bad("webhook_url", "an http:// or https:// URL, or null")
    if "na_values" in changes:
        tokens = changes["na_values"]
        if not (
            isinstance(tokens, list)
            and len(tokens) <= 1000
            and all(isinstance(t, str) and len(t) <= 100 for t in tokens)
        ):
            raise bad("na_values", "a list of strings (at most 1,000, each up to 100 characters)")
    for key, top in _SHARES.items():
        share = changes.get(key)
        if key in changes and not (
            isinstance(share, int | float) and not isinstance(share, bool) and 0 <= share <= top
        ):
            raise bad(key, f"a number from 0 to {top:g}")


def setting(project: Project, key: str) -> Any:
    return {**DEFAULT_SETTINGS, **(project.settings or {})}[key]


def status(session: Session, project: Project) -> dict[str, Any]:
    """Counts a person checks first: records, labeled, per label, per annotator, per origin.

    ``per_annotator`` counts each person's labeling-page answers, ``per_annotator_feedback``
    their feedback verdicts on served predictions (both are kept:
    :func:`looplab.ask.queue.annotate`);
    ``feedback_conflicts`` counts the (person, record) pairs whose two disagree, where
    :func:`looplab.trust.labels.consensus` decides the training label.
    """
    pid = project.id
    active = (Annotation.project_id == pid) & (Annotation.status == "active")
    records, rows = session.execute(
        select(func.count(), func.coalesce(func.sum(Record.row_count), 0)).where(
            Record.project_id == pid
        )
    ).one()
    labeled = (
        session.scalar(select(func.count(func.distinct(Annotation.record_id))).where(active)) or 0
    )
    per_label = _counts(session, Annotation.label, active)
    per_annotator, per_annotator_feedback = (
        _per_annotator(session, active & (Annotation.origin == origin))
        for origin in ("human", "feedback")
    )
    quarantined = (Annotation.project_id == pid) & (Annotation.status == "quarantined")
    return {
        "project": project.name,
        "task": project.task,
        "labels": list(project.labels),
        "records": records,
        # Imported rows the records stand for (identical rows are one record: issue 17).
        "rows": int(rows),
        "labeled": labeled,
        "unlabeled": records - labeled,
        "per_label": {label: per_label.get(label, 0) for label in project.labels},
        "per_annotator": per_annotator,
        "per_annotator_feedback": per_annotator_feedback,
        "feedback_conflicts": _feedback_conflicts(session, active),
        "per_origin": _counts(session, Annotation.origin, active),
        "quarantined": session.scalar(select(func.count()).where(quarantined)) or 0,
        "imports": session.scalar(select(func.count()).where(ImportBatch.project_id == pid)) or 0,
    }


def _counts(session: Session, column: Any, where: Any) -> dict[str, int]:
    """Annotations matching ``where``, counted by the value of ``column``."""
    query = select(column, func.count()).where(where).group_by(column)
    return dict(session.execute(query).tuples().all())


def _per_annotator(session: Session, where: Any) -> dict[str, int]:
    """Annotations matching ``where``, counted by their annotator's name."""
    query = (
        select(User.name, func.count())
        .select_from(Annotation)
        .join(User, User.id == Annotation.annotator_id)
        .where(where)
        .group_by(User.name)
    )
    return dict(session.execute(query).tuples().all())


def _feedback_conflicts(session: Session, active: Any) -> int:
    """(person, record) pairs whose labeling-page answer and feedback verdict disagree."""
    verdict = aliased(Annotation)
    query = (
        select(func.count())
        .select_from(Annotation)
        .join(
            verdict,
            (verdict.record_id == Annotation.record_id)
            & (verdict.annotator_id == Annotation.annotator_id)
            & (verdict.origin == "feedback")
            & (verdict.status == "active"),
        )
        .where(active & (Annotation.origin == "human") & (verdict.label != Annotation.label))
    )
    return session.scalar(query) or 0


def records_after(session: Session, project: Project, after: int, limit: int) -> list[Record]:
    """A page of ``project``'s records: up to ``limit`` with id above ``after``, in order."""
    return list(
        session.scalars(
            select(Record)
            .where(Record.project_id == project.id, Record.id > after)
            .order_by(Record.id)
            .limit(limit)
        )
    )


def get_record(session: Session, project: Project, record_id: int) -> Record:
    """``project``'s record ``record_id``; :class:`NotFound` if it has none by that id."""
    record = session.get(Record, record_id)
    if record is None or record.project_id != project.id:
        raise NotFound(
            f"no record {record_id} in project {project.name!r}", details={"record_id": record_id}
        )
    return record
