"""Gold files: records with known answers, read like an import (``looplab gold``).

A row's record is found by its content hash, as ``looplab import`` finds it (an existing record
becomes gold; a new one is created, closed to the ordinary queue: the gold hand-out serves it).
Each gold record gets a :class:`~looplab.core.tables.GoldAnswer` and the known answer as an
imported label, which is the annotation its one training example stands on in the lineage
(:func:`looplab.trust.labels.gold_example`). All or nothing, in the caller's transaction: an
unknown label, a row without one, two answers for one record or a record already gold with
another answer writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.collect import ingest
from looplab.collect.readers import open_source, resolve_spec
from looplab.collect.rows import Spec
from looplab.core import audit
from looplab.core.errors import Invalid
from looplab.core.tables import Annotation, GoldAnswer, ImportBatch, Project, Record

#: Formats a gold file may have (Label Studio exports bring answers, not known answers).
GOLD_FORMATS = ("csv", "jsonl", "parquet")


def _read(project: Project, path: Path, spec: Spec, fmt: str) -> dict[bytes, tuple[str, str, int]]:
    """Content hash -> (payload JSON, known answer, line) of every row; refuses bad rows."""
    size = path.stat().st_size
    if size == 0:
        raise spec.invalid(None, None, "the file is empty")
    rows: dict[bytes, tuple[str, str, int]] = {}
    labels = [str(label) for label in project.labels]
    with path.open("rb") as handle:
        source = open_source(fmt, path, handle, spec, size, batch_rows=ingest.BATCH_ROWS)
        if hasattr(source, "tasks"):
            raise spec.invalid(None, None, "a Label Studio export is not a gold file")
        for line, values, row_labels, _ in source.rows():
            digest, payload = ingest.encode_row(spec, values, line, source.format == "csv")
            answers = {ingest.check_label(spec, raw, labels, line) for raw, _ in row_labels or []}
            answers.discard(None)
            if len(answers) != 1:
                raise spec.invalid(line, spec.label, "a gold row needs its one known answer")
            label = str(answers.pop())
            earlier = rows.get(digest)
            if earlier is not None and earlier[1] != label:
                raise spec.invalid(
                    line,
                    spec.label,
                    f"this record's known answer is {earlier[1]!r} on line {earlier[2]} and "
                    f"{label!r} here; a gold record has one answer",
                )
            rows.setdefault(digest, (payload, label, line))
    if not rows:
        raise spec.invalid(None, None, "the file has a header but no rows")
    return rows


def _existing(session: Session, project: Project, digests: list[bytes]) -> dict[bytes, Record]:
    found: dict[bytes, Record] = {}
    for start in range(0, len(digests), 1000):
        chunk = digests[start : start + 1000]
        for record in session.scalars(
            select(Record).where(Record.project_id == project.id, Record.content_hash.in_(chunk))
        ):
            found[bytes(record.content_hash)] = record
    return found


def _known(session: Session, project: Project) -> dict[int, str]:
    rows = session.execute(
        select(GoldAnswer.record_id, GoldAnswer.label).where(GoldAnswer.project_id == project.id)
    ).tuples()
    return {int(rid): str(label) for rid, label in rows}


def import_gold(
    session: Session,
    project: Project,
    path: str | Path,
    *,
    label: str,
    text: str | None = None,
    fields: list[str] | None = None,
    fmt: str | None = None,
    encoding: str = "utf-8",
    actor: str,
    source: str | None = None,
) -> dict[str, Any]:
    """Read a gold file into ``project``; returns what it did (counts), audited.

    ``label`` is the column of known answers; ``text`` / ``fields`` the input columns as for
    ``looplab import``; ``source`` the file's name to keep (default: ``path``).
    """
    path = Path(path)
    if project.task != "text" and not project.fields:
        raise Invalid(
            f"project {project.name!r} has no input fields yet: import its records first",
            details={"field": "fields"},
        )
    fmt, spec, _ = resolve_spec(project, path, fmt, text, fields, label, [], encoding)
    if fmt not in GOLD_FORMATS:
        raise Invalid(
            f"{path}: a gold file is {', '.join(GOLD_FORMATS)}, not {fmt}",
            details={"file": str(path), "field": "format"},
        )
    if not path.is_file():
        raise Invalid(f"{path}: no such file", details={"file": str(path)})
    rows = _read(project, path, spec, fmt)
    records = _existing(session, project, list(rows))
    known = _known(session, project)
    for digest, record in records.items():
        before, (_, label_now, line) = known.get(record.id), rows[digest]
        if before is not None and before != label_now:
            raise spec.invalid(
                line,
                spec.label,
                f"record {record.id} is already gold with the answer {before!r}; this file "
                f"says {label_now!r} (one known answer per record)",
            )
    batch = ImportBatch(
        project_id=project.id,
        source=source or str(path),
        format=f"gold-{fmt}",
        file_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        mapping={"label": label, "inputs": spec.inputs},
        created_by=actor,
    )
    session.add(batch)
    session.flush()
    counts = _write(session, project, batch, rows, records, known, actor)
    batch.n_rows, batch.n_imported, batch.n_labels = len(rows), counts["created"], counts["gold"]
    audit.record(
        session,
        actor=actor,
        action="gold.import",
        entity_type="import_batch",
        entity_id=batch.id,
        project_id=project.id,
        details={"source": batch.source, **counts},
    )
    return {"batch_id": batch.id, "rows": len(rows), **counts}


def _write(
    session: Session,
    project: Project,
    batch: ImportBatch,
    rows: dict[bytes, tuple[str, str, int]],
    records: dict[bytes, Record],
    known: dict[int, str],
    actor: str,
) -> dict[str, int]:
    created = added = 0
    for digest, (payload, label, line) in rows.items():
        record = records.get(digest)
        if record is None:
            # Closed to the ordinary queue (answered as far as `needed` goes): the gold hand-out
            # serves it, at gold_rate. The score is the import's cold-start order.
            record = Record(
                project_id=project.id,
                batch_id=batch.id,
                source_line=line,
                content_hash=digest,
                payload=json.loads(payload),
                meta={},
                n_human=1,
                needed=1,
                score=int.from_bytes(digest[:6]) / 281474976710656.0,
            )
            session.add(record)
            session.flush()
            created += 1
        elif record.id in known:
            continue  # the same answer again: nothing to add
        session.add(
            Annotation(
                project_id=project.id,
                record_id=record.id,
                value={"label": label},
                label=label,
                origin="import",
                batch_id=batch.id,
            )
        )
        session.add(
            GoldAnswer(
                project_id=project.id,
                record_id=record.id,
                label=label,
                source="import",
                batch_id=batch.id,
                created_by=actor,
            )
        )
        added += 1
    session.flush()
    return {"gold": added, "created": created, "matched": len(records)}
