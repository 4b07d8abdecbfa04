"""Default pipelines and model artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_wine
from sklearn.preprocessing import FunctionTransformer

from looplab.learn.train import (
    ModelIntegrityError,
    SmallCorpusTfidf,
    UntrustedModelError,
    build_pipeline,
    load_model,
    records_to_frame,
    save_model,
)

POSITIVE = ["great", "wonderful", "loved", "superb", "delightful", "brilliant"]
NEGATIVE = ["awful", "boring", "hated", "dreadful", "dull", "terrible"]
THINGS = ["film", "plot", "acting", "ending", "soundtrack"]


def _reviews(n: int = 48) -> tuple[list[dict[str, str]], list[str]]:
    rng = np.random.default_rng(0)
    records, labels = [], []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        word = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        records.append({"text": f"the {rng.choice(THINGS)} was {word}", "id": str(i)})
        labels.append(label)
    return records, labels


def _wine_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_wine(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["colour"] = np.where(frame["hue"] > 1.0, "pale", "deep")
    frame["ash_text"] = frame["ash"].astype(str)  # numbers as CSV text
    frame.loc[[3, 7], "alcohol"] = np.nan
    frame.loc[5, "colour"] = None
    return frame, data.target.to_numpy()


def test_text_pipeline_fits_and_predicts() -> None:
    records, labels = _reviews()
    model = build_pipeline("text", ["text"]).fit(records, labels)
    proba = model.predict_proba([{"text": "a superb ending"}, {"text": "dull acting"}])
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.predict([{"text": "superb"}, {"text": "dull"}]).tolist() == ["pos", "neg"]
    frame = pd.DataFrame(records)
    assert model.predict(frame).tolist() == model.predict(records).tolist()


def test_text_pipeline_joins_several_fields_and_tolerates_missing() -> None:
    records = [{"title": "great", "body": "film"}, {"title": "awful", "body": None}, {"title": "x"}]
    model = build_pipeline("text", ["title", "body"]).fit(records, ["pos", "neg", "neg"])
    assert model.predict_proba([{"title": "great"}]).shape == (1, 2)


def test_tiny_corpus_fits() -> None:
    # Two records sharing no word and no character bigram: document-frequency pruning would
    # leave nothing; the hashed features keep every term.
    model = build_pipeline("text", ["text"]).fit([{"text": "yes"}, {"text": "no"}], ["a", "b"])
    assert model.predict([{"text": "yes"}, {"text": "no"}]).tolist() == ["a", "b"]


def test_identical_records_do_not_empty_the_vocabulary() -> None:
    # Every term is in every record, which max_df=0.9 would prune.
    records = [{"text": "same words"}] * 3
    model = build_pipeline("text", ["text"]).fit(records, ["a", "a", "b"])
    assert model.predict_proba(records).shape == (3, 2)


def test_small_corpus_tfidf_prunes_large_corpora() -> None:
    docs = [f"common word{i}" for i in range(150)]
    fitted = SmallCorpusTfidf(min_df=2).fit(docs)
    assert fitted.min_df_ == 2
    assert set(fitted.vocabulary_) == {"common"}
    assert SmallCorpusTfidf(min_df=2).fit(docs[:20]).min_df_ == 1


def test_tabular_pipeline_infers_column_types() -> None:
    frame, y = _wine_frame()
    fields = list(frame.columns)
    model = build_pipeline("tabular", fields).fit(frame.to_dict("records"), y)
    assert model.score(frame, y) > 0.95
    features = model.named_steps["features"]
    columns = dict((name, cols) for name, _, cols in features.columns_.transformers_)
    assert "ash_text" in columns["numeric"] and "alcohol" in columns["numeric"]
    assert columns["categorical"] == ["colour"]
    unseen = frame.iloc[:2].copy()
    unseen["colour"] = "never seen"
    assert model.predict_proba(unseen).shape == (2, 3)


def test_tabular_pipeline_on_digits() -> None:
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"px{i}" for i in range(64)])
    model = build_pipeline("tabular", list(frame.columns)).fit(frame[:500], digits.target[:500])
    assert model.score(frame[500:800], digits.target[500:800]) > 0.85


def test_records_missing_a_field_are_rejected_for_frames() -> None:
    with pytest.raises(ValueError, match="lack the field"):
        records_to_frame(pd.DataFrame({"a": [1]}), ["b"])
    with pytest.raises(ValueError, match="dicts"):
        records_to_frame([1, 2], ["a"])


def test_dotted_path_estimator() -> None:
    frame, y = _wine_frame()
    for path in ("sklearn.ensemble.RandomForestClassifier", "sklearn.tree:DecisionTreeClassifier"):
        model = build_pipeline("tabular", list(frame.columns), estimator=path).fit(frame, y)
        assert (
            type(model.named_steps["classifier"]).__name__ == path.replace(":", ".").split(".")[-1]
        )
        assert model.predict_proba(frame[:3]).shape == (3, 3)


@pytest.mark.parametrize(
    "path",
    [
        "sklearn.ensemble.NoSuchForest",
        "nosuchpackage.Model",
        "RandomForest",
        "sklearn.linear_model.Ridge",
    ],
)
def test_bad_estimator_path(path: str) -> None:
    with pytest.raises(ValueError, match=path.replace(".", r"\.")):
        build_pipeline("text", ["text"], estimator=path)


def test_bad_task_and_fields() -> None:
    with pytest.raises(ValueError, match="valid tasks: text, tabular"):
        build_pipeline("image", ["x"])
    with pytest.raises(ValueError, match="non-empty list"):
        build_pipeline("text", [])
    with pytest.raises(ValueError, match="non-empty list"):
        build_pipeline("text", "text")


def test_skops_round_trip(tmp_path: Path) -> None:
    records, labels = _reviews()
    model = build_pipeline("text", ["text"]).fit(records, labels)
    path = tmp_path / "models" / "v1.skops"
    digest = save_model(model, path)
    assert len(digest) == 64
    loaded = load_model(path, digest)
    np.testing.assert_array_equal(loaded.predict_proba(records), model.predict_proba(records))
    assert not list(path.parent.glob(".*tmp"))  # no temporary file left behind

    frame, y = _wine_frame()
    tabular = build_pipeline("tabular", list(frame.columns)).fit(frame, y)
    digest = save_model(tabular, tmp_path / "t.skops")
    again = load_model(tmp_path / "t.skops", digest.upper())
    np.testing.assert_array_equal(again.predict_proba(frame), tabular.predict_proba(frame))


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    records, labels = _reviews()
    path = tmp_path / "m.skops"
    digest = save_model(build_pipeline("text", ["text"]).fit(records, labels), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="modified or corrupted"):
        load_model(path, digest)


def _shout(X: object) -> object:  # a function from outside the trusted packages
    return X


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    model = FunctionTransformer(_shout)
    digest = save_model(model, tmp_path / "u.skops")
    with pytest.raises(UntrustedModelError, match=r"test_train\._shout"):
        load_model(tmp_path / "u.skops", digest)
