"""Serving's fast input frame gives exactly the probabilities of the records path."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.learn import train, training
from looplab.serve import serving


def served_for(task: str, fields: list[str], payloads: list[dict], labels: list[str]):
    model = train.build_pipeline(task, fields).fit(payloads, labels)
    columns = training.trained_schema(task, fields, model)
    return serving.Served(
        project_id=1,
        project_name="p",
        version=1,
        model=model,
        classes=[str(c) for c in model.classes_],
        fields=fields,
        schema=columns.types,
        checked_at=0.0,
        columns=columns.to_dict(),
        task=task,
    )


def test_mixed_tabular_input_frame_matches_the_records_path() -> None:
    rng = np.random.default_rng(0)
    fields = ["age", "income", "city", "code", "empty"]
    payloads = [
        {
            "age": int(rng.integers(18, 80)),
            "income": None if i % 7 == 0 else float(rng.normal(50, 10)),
            "city": [None, "paris", "lyon", "nice"][i % 4],
            "code": [3, "x", 7.5][i % 3],  # numbers and text: categorical
            "empty": None,
        }
        for i in range(120)
    ]
    labels = ["good" if p["age"] > 40 else "bad" for p in payloads]
    served = served_for("tabular", fields, payloads, labels)
    assert served.schema == {
        "age": "numeric",
        "income": "numeric",
        "city": "categorical",
        "code": "categorical",
        "empty": "categorical",
    }
    probe = [
        *payloads[:5],
        {"age": 30, "income": None, "city": "rome", "code": 3, "empty": None},
        {"age": 61.5, "income": 12, "city": None, "code": "x", "empty": "z"},
    ]
    for records in (probe[:1], probe):
        serving.validate_inputs(records, served)
        np.testing.assert_allclose(
            served.predict_proba(records), served.model.predict_proba(records), rtol=0, atol=0
        )


def test_all_numeric_and_text_input_frames_match_the_records_path() -> None:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    fields = [f"p{i}" for i in range(64)]
    payloads = [dict(zip(fields, r.tolist(), strict=True)) for r in x[:300]]
    digits = served_for("tabular", fields, payloads, [str(v) for v in y[:300]])
    probe = [*payloads[:3], {**payloads[3], "p5": None}]
    np.testing.assert_allclose(
        digits.predict_proba(probe), digits.model.predict_proba(probe), rtol=0, atol=0
    )
    texts = [{"title": f"t{i}", "body": ["good film", "bad film", None][i % 3]} for i in range(30)]
    sentiment = [["pos", "neg", "neg"][i % 3] for i in range(30)]
    news = served_for("text", ["title", "body"], texts, sentiment)
    np.testing.assert_allclose(
        news.predict_proba(texts[:4]), news.model.predict_proba(texts[:4]), rtol=0, atol=0
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [(float("inf"), "Infinity"), (10**400, "1000"), (False, "false"), ("ABC", '"ABC"')],
)
def test_numeric_fields_take_numbers_only(value: object, shown: str) -> None:
    served = served_for("tabular", ["age"], [{"age": a} for a in range(20)], ["a", "b"] * 10)
    with pytest.raises(serving.Invalid) as caught:
        serving.validate_inputs([{"age": value}], served)
    assert caught.value.message.startswith("records[0].age: expected a number")
    assert f"got {shown}" in caught.value.message
    assert caught.value.details == {"record": 0, "field": "age"}


def loans(n: int = 300) -> tuple[list[dict], list[str]]:
    """Rows as a CSV import stores them: numbers where the cell was one, the rest as text."""
    rng = np.random.default_rng(3)
    payloads, labels = [], []
    for i in range(n):
        age = int(rng.integers(18, 80))
        rate = float(rng.uniform(5, 25))
        rooms = [1, 2, 3, "4+"][i % 4]
        payloads.append(
            {
                "age": "NA" if i % 10 == 0 else age,
                "int_rate": f"{rate:.2f}%",
                "rooms": rooms,
            }
        )
        labels.append("default" if rate > 15 or rooms == 3 or age < 25 else "paid")
    return payloads, labels


def test_served_values_are_read_as_at_import() -> None:
    payloads, labels = loans()
    served = served_for("tabular", ["age", "int_rate", "rooms"], payloads, labels)
    assert served.schema == {"age": "numeric", "int_rate": "numeric", "rooms": "categorical"}

    def answer(**record: object) -> np.ndarray:
        serving.validate_inputs([record], served)
        return served.predict_proba([record])[0]

    base = answer(age=30, int_rate=14.07, rooms=3)
    for same in (
        {"age": 30.0, "int_rate": "14.07%", "rooms": 3.0},
        {"age": "30", "int_rate": " 14.07 %", "rooms": "3"},
        {"age": "30.0", "int_rate": 14.07, "rooms": "3.0"},
    ):
        np.testing.assert_array_equal(answer(**same), base)
    np.testing.assert_array_equal(
        answer(age="NA", int_rate=14.07, rooms=3), answer(age=None, int_rate=14.07, rooms=3)
    )
    assert served.known_categories == {"rooms": frozenset({"1", "2", "3", "4+"})}
    unknown = serving.validate_inputs(
        [{"age": 30, "int_rate": 9, "rooms": "5"}, {"age": 30, "int_rate": 9, "rooms": 2}], served
    )
    assert unknown == [["rooms"], []]


@pytest.mark.parametrize(
    ("record", "field", "expected"),
    [
        ({"age": "thirty", "int_rate": 9, "rooms": 1}, "age", "a number"),
        ({"age": 30, "int_rate": "9 pct", "rooms": 1}, "int_rate", "a number"),
        ({"age": 30, "int_rate": 9, "rooms": [1]}, "rooms", "a string or number"),
    ],
)
def test_a_value_that_cannot_be_read_names_its_field(record, field, expected) -> None:
    payloads, labels = loans(60)
    served = served_for("tabular", ["age", "int_rate", "rooms"], payloads, labels)
    with pytest.raises(serving.Invalid) as caught:
        serving.validate_inputs([record], served)
    assert caught.value.message.startswith(f"records[0].{field}: expected {expected}")
    assert ", got " in caught.value.message
    assert caught.value.details == {"record": 0, "field": field}
