"""Write the answers and predictions of a Label Studio export, once its records are in.

:mod:`looplab.collect.labelstudio` reads the tasks (:class:`~looplab.collect.labelstudio.Task`);
:func:`looplab.collect.ingest.import_file` writes their records through its fast path and then
calls :func:`write_answers`, in the same transaction, to add what a plain label column cannot
carry:

* **One annotation per Label Studio annotation**, origin ``import``, with its annotator, its
  ``created_at``, its lead time and ``ground_truth``; a cancelled answer is a skip. Two people
  agreeing on a task are two annotations, so overlap and agreement can be computed.
* **Annotators by e-mail.** An answer's ``completed_by.email`` finds the looplab user with that
  e-mail (or, failing that, the user *named* with it, who then gets the e-mail). Where there is
  none, a placeholder user is created: named after the e-mail, role annotator, inactive and with
  no usable token (``looplab user token NAME`` gives them one). The summary lists them.
* **Idempotent.** Each answer keeps its Label Studio id (``Annotation.external_id``, unique per
  project); an answer already imported is counted, never added again. Predictions likewise.
* **Predictions** of the imported control are kept as
  :class:`~looplab.core.tables.ExternalPrediction` rows (model version name and score); any
  looplab cannot hold are counted by model version in the summary.
* **Provenance.** The record keeps the first Label Studio task id it came from
  (``Record.external_id``); a task merged into another's record by dedupe is listed in the
  summary with the meta keys whose values differ from the kept record's.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from looplab.collect.lstasks import Answer, Controls, Hasher, Task
from looplab.core import audit
from looplab.core.tables import Annotation, ExternalPrediction, Project, Record, User

#: How many ids go in one ``IN (...)`` (SQLite allows 32,766 parameters; stay well under).
_IN_CHUNK = 5_000
#: A looplab user name: the one :mod:`looplab.govern.access` accepts.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")
_RECORDS = cast(Table, Record.__table__)
#: Merged tasks listed one by one in the summary; beyond this only their number.
_MERGED_SHOWN = 50


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def placeholder_token_hash() -> str:
    """A ``token_hash`` no token hashes to (SHA-256 hex never holds ``!``), unique per user."""
    return "!" + secrets.token_hex(31)


def _user_key(answer: Answer) -> str | None:
    if answer.email:
        return answer.email.lower()
    if answer.user_id is not None:
        return f"labelstudio-user-{answer.user_id}"
    return None


def resolve_annotators(
    session: Session, keys: Iterable[str], emails: dict[str, str], *, actor: str
) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Map each annotator key (a lower-cased e-mail, or ``labelstudio-user-N``) to a user id.

    Returns (key -> user id, key -> user name, names of the placeholder users created).
    """
    wanted = sorted(set(keys))
    ids: dict[str, int] = {}
    names: dict[str, str] = {}
    created: list[str] = []
    if not wanted:
        return ids, names, created
    by_email = {
        (email or "").lower(): (uid, name)
        for uid, name, email in session.execute(select(User.id, User.name, User.email))
        if email
    }
    by_name = {
        name.lower(): (uid, name) for uid, name in session.execute(select(User.id, User.name))
    }
    for key in wanted:
        hit = by_email.get(key)
        if hit is None and key in by_name:
            hit = by_name[key]
            if "@" in key:  # a user named with the e-mail: it is theirs
                session.execute(update(User).where(User.id == hit[0]).values(email=emails[key]))
        if hit is None:
            name = emails.get(key, key)
            if not _NAME.fullmatch(name) or name.lower() in by_name:
                name = f"labelstudio-{secrets.token_hex(4)}"
            user = User(
                name=name,
                role="annotator",
                token_hash=placeholder_token_hash(),
                active=False,
                email=emails.get(key),
            )
            session.add(user)
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="user.create",
                entity_type="user",
                entity_id=user.id,
                details={
                    "name": name,
                    "role": "annotator",
                    "placeholder": True,
                    "email": user.email,
                },
            )
            hit = (user.id, name)
            by_name[name.lower()] = hit
            created.append(name)
        ids[key], names[key] = hit
    return ids, names, created


@dataclass
class _Rows:
    """The rows one import adds, and what the summary says about them."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    guesses: list[dict[str, Any]] = field(default_factory=list)
    per_user: Counter[str] = field(default_factory=Counter)
    per_version: Counter[str] = field(default_factory=Counter)
    counted: set[tuple[int, int | None]] = field(default_factory=set)
    already: int = 0
    cancelled: int = 0


def write_answers(
    session: Session,
    project: Project,
    batch_id: int,
    tasks: list[Task],
    controls: Controls,
    hasher: Hasher,
    check_label: Callable[[Task, str], str],
    *,
    actor: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Write ``tasks``' answers and predictions (their records exist); return the summary."""
    pid = project.id
    digests = [task.digest if task.digest is not None else hasher(task) for task in tasks]
    record_of = _records_of(session, pid, digests)
    merged = _provenance(session, tasks, digests, record_of, batch_id)
    user_ids, user_names, created = _annotators(session, tasks, actor)
    known = _known(
        session, Annotation, pid, [a.id for t in tasks for a in t.answers if a.id is not None]
    )
    known_guesses = _known(
        session, ExternalPrediction, pid, [g.id for t in tasks for g in t.guesses if g.id]
    )
    rows = _Rows()
    base = {"project_id": pid, "batch_id": batch_id}
    for task, digest in zip(tasks, digests, strict=True):
        rid = record_of[digest][0]
        for answer in task.answers:
            if answer.id is not None and answer.id in known:
                rows.already += 1
                continue
            key = _user_key(answer)
            uid = user_ids.get(key) if key is not None else None
            label = None if answer.label is None else check_label(task, answer.label)
            rows.answers.append(_answer_row(base, rid, uid, answer, label, now))
            rows.cancelled += answer.cancelled
            if answer.id is not None:
                known.add(answer.id)
            if label is not None and not answer.cancelled:
                rows.counted.add((rid, uid))
                if key is not None:
                    rows.per_user[user_names[key]] += 1
        for guess in task.guesses:
            if guess.id is not None and guess.id in known_guesses:
                continue
            rows.guesses.append(
                {
                    **base,
                    "record_id": rid,
                    "model_version": guess.model_version,
                    "label": check_label(task, guess.label),
                    "score": guess.score,
                    "result": guess.result,
                    "external_id": guess.id,
                    "created_at": now,
                }
            )
            if guess.id is not None:
                known_guesses.add(guess.id)
            rows.per_version[guess.model_version] += 1
    return _write(session, rows, batch_id) | {
        **controls.summary(),
        "tasks": len(tasks),
        "placeholder_users": created,
        "merged_tasks": len(merged),
        "merged": merged[:_MERGED_SHOWN],
    }


def _answer_row(
    base: dict[str, Any],
    rid: int,
    uid: int | None,
    answer: Answer,
    label: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """An ``annotations`` row: an answer, or a skip (cancelled, or no choice at all)."""
    skipped = answer.cancelled or label is None
    return {
        **base,
        "record_id": rid,
        "annotator_id": uid,
        "value": {"skipped": True} if skipped else {"label": label},
        "label": None if skipped else label,
        "seconds": answer.seconds,
        "origin": "import",
        "status": "skipped" if skipped else "active",
        "external_id": answer.id,
        "ground_truth": answer.ground_truth,
        "created_at": answer.created_at or now,
    }


def _write(session: Session, rows: _Rows, batch_id: int) -> dict[str, Any]:
    """Insert the rows (Core executemany: a few statements, not one per row); count them."""
    if rows.answers:
        session.connection().execute(insert(cast(Table, Annotation.__table__)), rows.answers)
    if rows.guesses:
        session.connection().execute(
            insert(cast(Table, ExternalPrediction.__table__)), rows.guesses
        )
    _count_people(session, rows.counted, batch_id)
    active = sum(1 for a in rows.answers if a["status"] == "active")
    return {
        "answers": active,
        "cancelled": rows.cancelled,
        "skipped_empty": len(rows.answers) - active - rows.cancelled,
        "already_imported": rows.already,
        "annotators": dict(sorted(rows.per_user.items())),
        "predictions": dict(sorted(rows.per_version.items())),
    }


_RecordOf = dict[bytes, tuple[int, int | None, dict[str, Any], str | None]]


def _records_of(session: Session, pid: int, digests: list[bytes]) -> _RecordOf:
    """content hash -> (record id, its batch, its meta, its Label Studio task id)."""
    record_of: _RecordOf = {}
    for part in _chunks(list(set(digests))):
        rows = session.execute(
            select(
                Record.id, Record.content_hash, Record.batch_id, Record.meta, Record.external_id
            ).where(Record.project_id == pid, Record.content_hash.in_(part))
        )
        for rid, digest, bid, meta, external in rows:
            record_of[bytes(digest)] = (rid, bid, meta or {}, external)
    return record_of


def _provenance(
    session: Session,
    tasks: list[Task],
    digests: list[bytes],
    record_of: _RecordOf,
    batch_id: int,
) -> list[dict[str, Any]]:
    """Name each new record after its first task; return the tasks merged into another's record."""
    merged: list[dict[str, Any]] = []
    first_task: dict[int, str | None] = {}
    provenance: list[dict[str, Any]] = []
    for task, digest in zip(tasks, digests, strict=True):
        rid, bid, meta, external = record_of[digest]
        if rid not in first_task:
            first_task[rid] = external if external is not None else task.task_id
            if external is None and task.task_id is not None and bid == batch_id:
                provenance.append({"rid": rid, "ext": task.task_id})
                continue
            if bid == batch_id or task.task_id == external:
                continue  # a record of its own, or the same task imported again
        differs = sorted(k for k in {*meta, *task.meta} if meta.get(k) != task.meta.get(k))
        merged.append(
            {
                "task": task.task_id,
                "line": task.line,
                "record": rid,
                "kept_task": first_task[rid],
                "meta_differs": differs,
            }
        )
    if provenance:  # one executemany: a statement per record costs seconds per 10,000
        session.connection().execute(
            update(_RECORDS)
            .where(_RECORDS.c.id == bindparam("rid"))
            .values(external_id=bindparam("ext")),
            provenance,
        )
    return merged


def _annotators(
    session: Session, tasks: list[Task], actor: str
) -> tuple[dict[str, int], dict[str, str], list[str]]:
    emails: dict[str, str] = {}
    for task in tasks:
        for answer in task.answers:
            key = _user_key(answer)
            if key is not None and answer.email:
                emails.setdefault(key, answer.email)
    keys = {k for task in tasks for a in task.answers if (k := _user_key(a)) is not None}
    return resolve_annotators(session, keys, emails, actor=actor)


def _known(
    session: Session, table: type[Annotation] | type[ExternalPrediction], pid: int, ids: list[str]
) -> set[str]:
    """Which of these Label Studio ids the project already holds (idempotent re-imports)."""
    known: set[str] = set()
    for part in _chunks(ids):
        known.update(
            session.scalars(
                select(table.external_id).where(
                    table.project_id == pid, table.external_id.in_(part)
                )
            )
        )
    return known


def _count_people(session: Session, counted: set[tuple[int, int | None]], batch_id: int) -> None:
    """Each person with a new active answer on a record counts once towards its ``needed``.

    A person who already answered the record (in looplab or an earlier import) is not counted
    again; answers with no known annotator count once per record.
    """
    if not counted:
        return
    records = sorted({rid for rid, _ in counted})
    before: set[tuple[int, int | None]] = set()
    for part in _chunks(records):
        before.update(
            session.execute(
                select(Annotation.record_id, Annotation.annotator_id).where(
                    Annotation.record_id.in_(part),
                    Annotation.status == "active",
                    Annotation.annotator_id.is_not(None),
                    (Annotation.batch_id.is_(None)) | (Annotation.batch_id != batch_id),
                )
            ).tuples()
        )
    increments: Counter[int] = Counter(
        rid for rid, uid in counted if uid is None or (rid, uid) not in before
    )
    if increments:
        session.connection().execute(
            update(_RECORDS)
            .where(_RECORDS.c.id == bindparam("rid"))
            .values(n_human=_RECORDS.c.n_human + bindparam("n")),
            [{"rid": rid, "n": n} for rid, n in increments.items()],
        )
