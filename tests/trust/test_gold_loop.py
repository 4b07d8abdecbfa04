"""Gold records: imported with known answers (all or nothing), handed out at gold_rate and never
twice to one person, trained once with the known answer."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from sqlalchemy import func, select

from looplab.ask import gold, queue
from looplab.collect import ingest
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import (
    Annotation,
    AuditEvent,
    GoldAnswer,
    ImportBatch,
    Record,
    TrainingLabel,
)
from looplab.govern import access
from looplab.trust import annotators, goldfile
from tests import textdata


def project_with_records(store: Store, n: int = 120) -> list[tuple[str, str]]:
    """Project ``news`` with ``n`` unlabeled records; returns their (text, true label)."""
    rows = [(text, label) for text, label, _ in textdata.rows(n)]
    with store.write() as session:
        project = projects.create_project(
            session, "news", task="text", labels=textdata.LABELS, actor="test"
        )
        for text, _ in rows:
            session.add(
                Record(
                    project_id=project.id,
                    content_hash=ingest.content_hash(project, {"text": text}),
                    payload={"text": text},
                    meta={},
                    score=0.5,
                )
            )
    return rows


def gold_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["body", "topic"])
        out.writerows(rows)
    return path


def import_gold(store: Store, path: Path) -> dict:
    with store.write() as session:
        project = projects.get_project(session, "news")
        return goldfile.import_gold(session, project, path, text="body", label="topic", actor="t")


def counts(store: Store) -> tuple[int, int, int, int]:
    with store.read() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (GoldAnswer, Record, ImportBatch, Annotation)
        )


def test_a_gold_file_marks_existing_records_and_adds_new_ones(store: Store, tmp_path: Path) -> None:
    rows = project_with_records(store, n=20)
    new = [("a brand new article about the cup final", "sport")]
    report = import_gold(store, gold_csv(tmp_path / "gold.csv", rows[:5] + new))
    assert (report["gold"], report["matched"], report["created"]) == (6, 5, 1)
    assert counts(store) == (6, 21, 1, 6)
    # The same file again: nothing new (same answers).
    again = import_gold(store, gold_csv(tmp_path / "again.csv", rows[:5]))
    assert again["gold"] == 0 and counts(store)[0] == 6
    with store.read() as session:
        assert session.scalar(select(func.count()).where(AuditEvent.action == "gold.import")) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([("some text", "weather")], "unknown label 'weather'; valid labels: business"),
        (
            [("twice", "sport"), ("twice", "tech")],
            "line 6, field 'topic': this record's known answer is 'sport' on line 5",
        ),
    ],
)
def test_a_bad_gold_file_writes_nothing(
    store: Store, tmp_path: Path, bad: list[tuple[str, str]], message: str
) -> None:
    rows = project_with_records(store, n=5)
    before = counts(store)
    with pytest.raises(Invalid, match=message):
        import_gold(store, gold_csv(tmp_path / "gold.csv", rows[:3] + bad))
    assert counts(store) == before


def test_another_answer_for_a_gold_record_is_refused(store: Store, tmp_path: Path) -> None:
    rows = project_with_records(store, n=5)
    import_gold(store, gold_csv(tmp_path / "gold.csv", rows[:2]))
    text, label = rows[0]
    other = next(x for x in textdata.LABELS if x != label)
    with pytest.raises(Invalid, match=f"already gold with the answer '{label}'"):
        import_gold(store, gold_csv(tmp_path / "other.csv", [(text, other)]))


def test_gold_is_handed_at_its_rate_never_twice_and_looks_ordinary(
    store: Store, tmp_path: Path
) -> None:
    rows = project_with_records(store, n=150)
    import_gold(store, gold_csv(tmp_path / "gold.csv", rows[:40]))
    with store.write() as session:
        project = projects.get_project(session, "news")
        projects.write_settings(session, project, {"gold_rate": 0.2}, actor="t")
        ann = access.create_user(session, "ann", "annotator", actor="t")[0]
    seen: list[int] = []
    golden = 0
    rng = random.Random(0)
    for _ in range(100):
        with store.write() as session:
            project = projects.get_project(session, "news")
            record = queue.next_record(session, project, ann, lease_seconds=60, rng=rng)
            assert record is not None
            shown = gold.as_handed(session, record)
            if gold.is_gold(session, record.id):
                golden += 1
                assert (shown["n_human"], shown["needed"], shown["batch_id"]) == (0, 1, None)
            seen.append(record.id)
            queue.annotate(session, project, ann, record.id, "sport")
    assert len(seen) == len(set(seen))  # never the same record twice
    assert 10 <= golden <= 30  # 20% of 100, within the binomial's spread
    # Her gold answers grade her: "sport" is right on the gold records that are sport.
    with store.read() as session:
        project = projects.get_project(session, "news")
        known = dict(session.execute(select(GoldAnswer.record_id, GoldAnswer.label)).tuples().all())
        (person,) = annotators.report(session, project)["annotators"]
    right = sum(known[rid] == "sport" for rid in seen if rid in known)
    assert person["gold"]["n"] == golden and person["gold"]["right"] == right
    assert person["gold"]["low"] < person["gold"]["rate"] < person["gold"]["high"]


def test_a_gold_record_trains_once_with_its_known_answer(store: Store, tmp_path: Path) -> None:
    rows = project_with_records(store, n=60)
    import_gold(store, gold_csv(tmp_path / "gold.csv", rows))
    with store.write() as session:
        project = projects.get_project(session, "news")
        people = [access.create_user(session, n, "annotator", actor="t")[0] for n in "ab"]
        ids = list(session.scalars(select(Record.id).order_by(Record.id)))
        for person in people:  # both answer every gold record wrongly
            for rid in ids:
                wrong = next(x for x in textdata.LABELS if x != rows[rid - ids[0]][1])
                queue.annotate(session, project, person, rid, wrong)
    result = textdata.train(store, tmp_path)
    with store.read() as session:
        lineage = session.execute(
            select(Annotation.origin, func.sum(TrainingLabel.weight))
            .join(TrainingLabel, TrainingLabel.annotation_id == Annotation.id)
            .group_by(Annotation.origin)
        ).all()
    # Each record once, with its known answer; people's answers seen, standing for 0 rows.
    assert dict(lineage) == {"import": 60, "human": 0}
    assert result["train_rows"] + result["test_rows"] == 60
