"""The model card names the pipeline a version really is (not TF-IDF for a table)."""

from __future__ import annotations

from looplab.govern import card


def test_a_tabular_card_names_its_columns_by_type() -> None:
    config = {
        "task": "tabular",
        "estimator": "default",
        "schema": {"id": "identifier", "age": "numeric", "zip": "categorical", "d": "date"},
    }
    line = card.pipeline(config, "tabular")
    assert "TF-IDF" not in line
    assert line == (
        "tabular columns by type (numeric (median-imputed, scaled): age; date (years since 1970,"
        " month, weekday): d; categorical (one-hot): zip; left out as identifiers: id)"
        " + logistic regression"
    )
    named = card.pipeline({**config, "estimator": "sklearn.ensemble.RandomForestClassifier"}, "")
    assert named.endswith("+ `sklearn.ensemble.RandomForestClassifier`")


def test_a_text_card_says_tfidf() -> None:
    assert card.pipeline({"task": "text"}, "text").startswith("TF-IDF of word 1-2 grams")
