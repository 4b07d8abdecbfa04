"""Repeated rows keep their counts (issue 17): a record standing for many identical rows trains
with each label's count, so the model learns P(y|x) for repeated inputs.

The issue's example: 6,000 rows over 4 shops x 6 hours with P(yes | shop) = 0.1, 0.3, 0.6, 0.9.
Counted once per distinct label, every record trained as both labels and the model said 0.81,
0.70, 0.66, 0.37.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from looplab import worker
from looplab.collect import ingest
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Record, TrainingLabel
from looplab.learn import dataset, registry
from tests.conftest import fresh_store

TRUTH = {"a": 0.1, "b": 0.3, "c": 0.6, "d": 0.9}
HOURS = range(6)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store("sqlite", tmp_path) as made:
        yield made


def shops_csv(path: Path, n: int = 6_000, seed: int = 0, with_ids: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    shops = rng.choice(list(TRUTH), size=n)
    hours = rng.choice(list(HOURS), size=n)
    yes = rng.random(n) < np.array([TRUTH[s] for s in shops])
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["order", "shop", "hour", "late"])
        for i, (shop, hour, label) in enumerate(zip(shops, hours, yes, strict=True)):
            out.writerow([f"o{i}", shop, hour, "yes" if label else "no"])
    return path


def new_project(store: Store, **settings: object) -> None:
    with store.write() as session:
        project = projects.create_project(
            session, "shops", task="tabular", labels=["yes", "no"], actor="t"
        )
        if settings:
            projects.write_settings(session, project, settings, actor="t")


def import_(store: Store, path: Path, **kw: object) -> ingest.ImportReport:
    with store.write() as session:
        project = projects.get_project(session, "shops")
        return ingest.import_file(
            session, project, path, fields=["shop", "hour"], label="late", actor="t", **kw
        )


def train(store: Store, tmp_path: Path) -> dict:
    with store.write() as session:
        job = jobs.enqueue(session, "train", project_id=projects.get_project(session, "shops").id)
        job_id = job.id
    worker.drain(store, Settings(home=tmp_path))
    with store.read() as session:
        job = session.get(jobs.Job, job_id)
        assert job is not None and job.status == "done", job.error if job else None
        return dict(job.result)


def p_yes_by_shop(store: Store) -> dict[str, float]:
    with store.read() as session:
        project = projects.get_project(session, "shops")
        version = registry.latest(session, project)
        assert version is not None
        model = registry.load(session, version)
    classes = [str(c) for c in model.classes_]
    out = {}
    for shop in TRUTH:
        proba = model.predict_proba([{"shop": shop, "hour": h} for h in HOURS])
        out[shop] = float(proba[:, classes.index("yes")].mean())
    return out


def test_the_shops_learn_p_yes_given_shop_within_005(store: Store, tmp_path: Path) -> None:
    new_project(store)
    report = import_(store, shops_csv(tmp_path / "shops.csv"))
    assert (report.rows, report.distinct, report.imported) == (6_000, 24, 24)
    assert report.conflicting == 24  # every shop-hour has both labels somewhere
    assert report.summary().startswith("6,000 rows, 24 distinct inputs, counts kept;")
    result = train(store, tmp_path)
    # 6,000 rows stand behind the 24 records; the split is by record, so ~80% of rows train.
    assert result["train_rows"] + result["test_rows"] == 6_000
    learned = p_yes_by_shop(store)
    for shop, truth in TRUTH.items():
        assert learned[shop] == pytest.approx(truth, abs=0.05), learned


def test_a_repeated_input_stays_on_one_side_of_the_split(store: Store, tmp_path: Path) -> None:
    new_project(store)
    import_(store, shops_csv(tmp_path / "shops.csv", n=2_000))
    with store.read() as session:
        data = dataset.labeled_set(session, projects.get_project(session, "shops"))
        row_counts = dict(session.execute(select(Record.id, Record.row_count)).tuples().all())
    sides: dict[int, set[str]] = {}
    for record_id, split in zip(data.record_ids, data.splits, strict=True):
        sides.setdefault(record_id, set()).add(split)
    assert all(len(s) == 1 for s in sides.values())
    assert {"train", "test"} <= {s for both in sides.values() for s in both}
    # Each record's examples (one per label) add up to the rows it stands for.
    per_record: dict[int, int] = {}
    for record_id, weight in zip(data.record_ids, data.weights, strict=True):
        per_record[record_id] = per_record.get(record_id, 0) + weight
    assert per_record == row_counts and sum(per_record.values()) == 2_000
    test = data.subset("test")
    rows = test.expanded()
    assert len(rows) == test.n_rows and set(rows.splits) == {"test"}
    assert set(rows.record_ids) == set(test.record_ids)


def test_lineage_keeps_the_rows_each_label_stood_for(store: Store, tmp_path: Path) -> None:
    new_project(store)
    import_(store, shops_csv(tmp_path / "shops.csv", n=1_000))
    train(store, tmp_path)
    with store.read() as session:
        weights = session.scalars(select(TrainingLabel.weight)).all()
    assert sum(w or 0 for w in weights) == 1_000 and all(w is not None for w in weights)


def test_dedupe_none_makes_every_row_a_record(store: Store, tmp_path: Path) -> None:
    new_project(store, dedupe="none")
    report = import_(store, shops_csv(tmp_path / "shops.csv", n=500))
    assert (report.rows, report.imported, report.duplicates) == (500, 500, 0)
    assert report.summary().startswith("500 rows, each its own record (dedupe=none);")
    # Rows with the same inputs from another file: 500 more records, none merged with the first
    # import's. (The very same file again is refused: tests/collect/test_ingest.py.)
    again = tmp_path / "again.csv"
    again.write_text((tmp_path / "shops.csv").read_text().replace("\no", "\nx"))  # new order ids
    assert import_(store, again).imported == 500
    with store.read() as session:
        assert set(session.scalars(select(Record.row_count)).all()) == {1}


def test_import_id_same_id_one_record_different_ids_apart(store: Store, tmp_path: Path) -> None:
    new_project(store)
    path = tmp_path / "ids.csv"
    path.write_text(
        "order,shop,hour,late\no1,a,1,yes\no1,a,1,no\no2,a,1,yes\no3,b,2,\n o3 ,b,2,no\n"
    )
    report = import_(store, path, id_column="order")
    # o1 twice (counted), o2 with o1's very inputs but its own record, o3 with one label.
    assert (report.rows, report.imported, report.distinct, report.conflicting) == (5, 3, 3, 1)
    assert report.dedupe == "id" and report.labels == 4
    assert report.summary() == (
        "5 rows, 3 distinct ids, counts kept; 3 new records, 4 labeled rows;"
        " 1 input carries conflicting labels"
    )
    with store.read() as session:
        found = session.execute(
            select(Record.meta, Record.payload, Record.row_count).order_by(Record.id)
        ).all()
    assert [(m["order"], p, n) for m, p, n in found] == [
        ("o1", {"shop": "a", "hour": 1}, 2),
        ("o2", {"shop": "a", "hour": 1}, 1),
        ("o3", {"shop": "b", "hour": 2}, 2),
    ]
    # Later files with the same ids count towards the same records.
    later = tmp_path / "later.csv"
    later.write_text("order,shop,hour,late\no1,a,1,yes\no2,a,1,no\no2,a,1,no\n")
    again = import_(store, later, id_column="order")
    assert (again.imported, again.duplicates) == (0, 3)
    with store.read() as session:
        counts = session.scalars(select(Record.row_count).order_by(Record.id)).all()
    assert counts == [3, 3, 2]


def test_import_id_refuses_a_row_without_an_id(store: Store, tmp_path: Path) -> None:
    from looplab.core.errors import Invalid

    new_project(store)
    path = tmp_path / "ids.csv"
    path.write_text("order,shop,hour,late\no1,a,1,yes\n,b,2,no\n")
    with pytest.raises(Invalid, match="line 3, field 'order': the id is missing") as caught:
        import_(store, path, id_column="order")
    assert caught.value.details == {"file": str(path), "line": 3, "field": "order"}


def test_the_drift_reference_describes_the_training_rows(store: Store, tmp_path: Path) -> None:
    from looplab.watch import reference

    new_project(store)
    import_(store, shops_csv(tmp_path / "shops.csv", n=1_200))
    result = train(store, tmp_path)
    with store.read() as session:
        version = registry.latest(session, projects.get_project(session, "shops"))
        assert version is not None
        rows = reference.training_rows(session, version, "train")
        data = dataset.labeled_set(session, projects.get_project(session, "shops")).subset("train")
    # One row per training row (not per distinct input), each label as often as it was seen.
    assert len(rows) == result["train_rows"] == data.n_rows
    seen = sum(1 for payload, label in rows if payload["shop"] == "d" and label == "yes")
    counted = sum(
        w
        for p, y, w in zip(data.payloads, data.labels, data.weights, strict=True)
        if p["shop"] == "d" and y == "yes"
    )
    assert seen == counted > 0


def test_an_estimator_without_sample_weight_gets_repeated_rows() -> None:
    from looplab.learn import train as train_module

    records = [{"shop": s, "hour": 1} for s in ("a", "a", "b", "b")]
    labels = ["yes", "no", "yes", "no"]
    weights = [1, 9, 9, 1]
    model = train_module.build_pipeline(
        "tabular", ["shop", "hour"], "sklearn.neighbors.KNeighborsClassifier"
    )
    model.set_params(classifier__n_neighbors=10)
    note = train_module.fit_weighted(model, records, labels, weights)
    assert note is not None and "KNeighborsClassifier.fit takes no sample_weight" in note
    assert "20 rows from 4 examples" in note
    classes = list(model.classes_)
    proba = model.predict_proba([{"shop": "a", "hour": 1}, {"shop": "b", "hour": 1}])
    assert proba[:, classes.index("yes")].tolist() == [0.1, 0.9]
    # A classifier with sample_weight gets the weights and no note.
    weighted = train_module.build_pipeline("tabular", ["shop", "hour"])
    assert train_module.fit_weighted(weighted, records, labels, weights) is None
    assert weighted.predict([{"shop": "a", "hour": 1}]).tolist() == ["no"]
