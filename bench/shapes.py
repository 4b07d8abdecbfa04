"""Data shapes that flatter or break a model: looplab against a careful scikit-learn pipeline.

Each shape is one generated CSV with one difficulty a user's own data brings:

* ``minority_1pct``, ``minority_5pct``: a binary table whose rare class holds 1% or 5% of rows;
* ``na_tokens``: numeric columns where R's ``write.csv`` wrote ``NA`` for missing values;
* ``currency_percent``: a balance as ``$1,073.55`` and a rate as ``14.07%``;
* ``id_column``: a unique row identifier beside the features;
* ``date_column``: a date column (one distinct value per few rows) beside the features;
* ``many_classes``: 32 classes with Zipf-like counts (the rarest has a handful of rows);
* ``short_texts``: 200 short reviews in two classes, a fifth of them exact duplicates.

Every shape goes through looplab's own path (``ingest.import_file`` into a fresh workspace
store, then the training job's handler, as ``looplab import`` and ``looplab train`` run them)
and through the pipeline a careful scikit-learn user would write: ``pd.read_csv`` with its
defaults, a ``ColumnTransformer`` (median imputation and scaling for numeric dtypes, most-frequent
imputation and one-hot encoding for the rest; TF-IDF for text), ``LogisticRegression(
class_weight="balanced")``, trained on the same train records and scored on the same test
records as looplab (its content-hash split; duplicates of a record follow it and count as
rows on both sides). Per shape: the
macro-F1 and balanced accuracy of both on those test records, and the gate's verdict on a
constant model (``sklearn.dummy.DummyClassifier``, the most frequent class) against looplab's
model in production.

Goal: looplab within 1 point of the pipeline's macro-F1 or better on every shape, and the
constant model refused on every imbalanced shape.

Usage::

    python bench/shapes.py [--quick] [--json] [--shape NAME ...]

``--quick`` halves the tables (same shapes). The last line is ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.compose import ColumnTransformer, make_column_selector  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, f1_score  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from looplab import configure  # noqa: E402
from looplab.collect import ingest  # noqa: E402
from looplab.core import projects  # noqa: E402
from looplab.core.settings import Settings  # noqa: E402
from looplab.core.store import Store  # noqa: E402
from looplab.core.tables import Job, Project  # noqa: E402
from looplab.learn import dataset, promotion, registry, training  # noqa: E402

#: looplab may trail the pipeline by at most this much macro-F1 (1 point).
GOAL_GAP = 0.01
DUMMY = "sklearn.dummy.DummyClassifier"


# --------------------------------------------------------------------------- shapes


def _features(rng: np.random.Generator, n: int, y: np.ndarray, k: int = 4) -> np.ndarray:
    """``k`` numeric features, the first two shifted by the class (index into sorted labels)."""
    codes = np.unique(y, return_inverse=True)[1]
    x = rng.normal(size=(n, k))
    x[:, 0] += 1.4 * codes
    x[:, 1] -= 0.8 * codes
    return x


def _binary(rng: np.random.Generator, n: int, rare: float) -> tuple[pd.DataFrame, str]:
    y = np.where(rng.random(n) < rare, "default", "paid")
    x = _features(rng, n, y)
    frame = pd.DataFrame({f"x{i}": np.round(x[:, i], 3) for i in range(x.shape[1])})
    frame["label"] = y
    return frame, "tabular"


def minority(rare: float) -> Callable[[np.random.Generator, int], tuple[pd.DataFrame, str]]:
    return lambda rng, n: _binary(rng, n, rare)


def na_tokens(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, str]:
    frame, task = _binary(rng, n, 0.3)
    for column in ("x0", "x1", "x2"):
        values = frame[column].astype(object)
        values[rng.random(n) < 0.12] = "NA"  # R's write.csv default for a missing value
        frame[column] = values
    return frame, task


def currency_percent(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, str]:
    y = np.where(rng.random(n) < 0.3, "default", "paid")
    x = _features(rng, n, y)
    balance = np.round(np.exp(7 + 0.8 * x[:, 0]), 2)
    rate = np.round(12 + 3 * x[:, 1], 2)
    frame = pd.DataFrame(
        {
            "balance": [f"${v:,.2f}" for v in balance],
            "rate": [f"{v:.2f}%" for v in rate],
            "x2": np.round(x[:, 2], 3),
            "x3": np.round(x[:, 3], 3),
        }
    )
    frame["label"] = y
    return frame, "tabular"


def id_column(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, str]:
    frame, task = _binary(rng, n, 0.3)
    frame.insert(0, "customer_id", rng.permutation(n) + 100_000)
    return frame, task


def date_column(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, str]:
    frame, task = _binary(rng, n, 0.3)
    days = rng.integers(0, 3 * 365, size=n)
    frame.insert(0, "opened", (pd.Timestamp("2021-01-01") + pd.to_timedelta(days, "D")).date)
    return frame, task


def many_classes(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, str]:
    k = 32
    weights = 1 / np.arange(1, k + 1) ** 0.9
    y = rng.choice([f"c{i:02d}" for i in range(k)], size=n, p=weights / weights.sum())
    codes = np.unique(y, return_inverse=True)[1]
    centres = rng.normal(scale=2.2, size=(k, 6))
    x = centres[codes] + rng.normal(size=(n, 6))
    frame = pd.DataFrame({f"x{i}": np.round(x[:, i], 3) for i in range(6)})
    frame["label"] = y
    return frame, "tabular"


GOOD = ["great", "loved", "excellent", "wonderful", "best", "amazing", "perfect", "fun"]
BAD = ["bad", "awful", "boring", "worst", "hated", "poor", "broken", "waste"]
FILLER = ["the", "film", "was", "it", "this", "and", "a", "movie", "really", "plot", "so", "but"]


def short_texts(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, str]:
    n = max(n, 200)
    rows = []
    for _ in range(int(n * 0.8)):
        label = "pos" if rng.random() < 0.55 else "neg"
        own, other = (GOOD, BAD) if label == "pos" else (BAD, GOOD)
        words = [*rng.choice(own, rng.integers(1, 3)), *rng.choice(FILLER, rng.integers(2, 6))]
        if rng.random() < 0.2:
            words.append(str(rng.choice(other)))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    rows += [rows[i] for i in rng.integers(0, len(rows), size=n - len(rows))]  # duplicates
    frame = pd.DataFrame(rows, columns=["text", "label"])
    return frame, "text"


SHAPES: dict[str, tuple[Callable[[np.random.Generator, int], tuple[pd.DataFrame, str]], int]] = {
    "minority_1pct": (minority(0.01), 6000),
    "minority_5pct": (minority(0.05), 3000),
    "na_tokens": (na_tokens, 2000),
    "currency_percent": (currency_percent, 2000),
    "id_column": (id_column, 2000),
    "date_column": (date_column, 2000),
    "many_classes": (many_classes, 3000),
    "short_texts": (short_texts, 200),
}
#: Shapes whose rarest class holds less than half an equal share: the gate must refuse a constant.
IMBALANCED = ("minority_1pct", "minority_5pct", "many_classes")


# --------------------------------------------------------------------------- looplab


def run_looplab(name: str, csv_path: Path, frame: pd.DataFrame, task: str, home: Path) -> dict:
    """Import and train through looplab; gate a constant model against it in production."""
    store = Store(f"sqlite:///{home / 'looplab.db'}", artifacts_dir=home / "artifacts")
    store.upgrade()
    settings = Settings(home=home)
    fields = [c for c in frame.columns if c not in ("label", "row")]
    labels = sorted(frame["label"].unique())
    with store.write() as session:
        project = projects.create_project(
            session,
            name.replace("_", "-"),
            task=task,
            labels=labels,
            fields=None if task == "text" else fields,
            actor="bench",
        )
        ingest.import_file(
            session,
            project,
            csv_path,
            text="text" if task == "text" else None,
            fields=None if task == "text" else fields,
            label="label",
            meta=["row"],
            actor="bench",
        )
        project_id = project.id
    started = time.perf_counter()
    result = _train(store, settings, project_id)
    seconds = time.perf_counter() - started
    with store.read() as session:
        project = session.get(Project, project_id)
        assert project is not None
        data = dataset.labeled_set(session, project)
        v1 = registry.get_version(session, project, result["model"])
        metrics = dict(v1.metrics)
    split = {int(m["row"]): s for m, s in zip(data.meta, data.splits, strict=True)}
    with store.write() as session:
        project = session.get(Project, project_id)
        assert project is not None
        registry.promote(
            session,
            project,
            registry.get_version(session, project, "v1"),
            actor="bench",
            reason="bench baseline",
        )
        configure.update_settings(session, project, {"estimator": DUMMY}, actor="bench")
    constant = _train(store, settings, project_id)
    with store.read() as session:
        project = session.get(Project, project_id)
        assert project is not None
        candidate = registry.get_version(session, project, constant["model"])
        report = promotion.run_gate(session, project, candidate)
    store.dispose()
    return {
        "macro_f1": metrics["macro_f1"],
        "balanced_accuracy": metrics["balanced_accuracy"],
        "accuracy": metrics["accuracy"],
        "ece": metrics["ece"],
        "baseline_accuracy": metrics["baseline"]["accuracy"],
        "n_test": metrics["n"],
        "calibration": result["calibration"],
        "train_seconds": round(seconds, 2),
        "split": split,
        "gate_metric": report.result.metric,
        "constant_refused": not report.passed,
        "constant_reasons": list(report.result.reasons),
        "warnings": result.get("warnings", []),
    }


def _train(store: Store, settings: Settings, project_id: int) -> dict[str, Any]:
    # The job's handler, called as the worker calls it (the pool-scoring job it queues is left).
    job = Job(kind="train", project_id=project_id, params={"actor": "bench"})
    result = training.train_project(store, settings, job)
    if "model" not in result:
        raise RuntimeError(f"training did not produce a model: {result}")
    return result


# --------------------------------------------------------------------------- scikit-learn


def careful_pipeline(frame: pd.DataFrame, task: str) -> Pipeline:
    """What a careful scikit-learn user writes after ``pd.read_csv`` (defaults)."""
    classifier = LogisticRegression(class_weight="balanced", max_iter=2000)
    if task == "text":
        return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), classifier)
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    other = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    columns = ColumnTransformer(
        [
            ("numeric", numeric, make_column_selector(dtype_include="number")),
            ("other", other, make_column_selector(dtype_exclude="number")),
        ]
    )
    return make_pipeline(columns, classifier)


def run_sklearn(csv_path: Path, task: str, split: dict[int, str]) -> dict[str, Any]:
    """Train on looplab's train records (and their duplicates), score on its test records."""
    frame = pd.read_csv(csv_path)
    rows = frame["row"].astype(int)
    if task == "text":  # a duplicate row follows the record looplab kept for its text
        kept = {text: row for text, row in zip(frame["text"], rows, strict=True) if row in split}
        side = [split.get(kept.get(text, -1)) for text in frame["text"]]
    else:
        side = [split.get(row) for row in rows]
    # Scored on the rows of looplab's test records, duplicates included: looplab's held-out
    # figures count every row a record stands for.
    is_test = np.array([s == "test" for s in side])
    is_train = np.array([s == "train" for s in side])
    X = frame.drop(columns=["label", "row"])
    X = X["text"] if task == "text" else X
    y = frame["label"].to_numpy()
    model = careful_pipeline(frame, task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X[is_train], y[is_train])
        pred = model.predict(X[is_test])
    truth = y[is_test]
    return {
        "macro_f1": float(f1_score(truth, pred, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, pred)),
        "n_test": int(is_test.sum()),
    }


# --------------------------------------------------------------------------- main


def run_shape(name: str, quick: bool, workdir: Path) -> dict[str, Any]:
    make, n = SHAPES[name]
    rng = np.random.default_rng(list(SHAPES).index(name))
    frame, task = make(rng, n // 2 if quick and name != "short_texts" else n)
    frame.insert(0, "row", np.arange(len(frame)))
    csv_path = workdir / f"{name}.csv"
    frame.to_csv(csv_path, index=False)
    home = workdir / name
    home.mkdir()
    mine = run_looplab(name, csv_path, frame, task, home)
    theirs = run_sklearn(csv_path, task, mine.pop("split"))
    rare = frame["label"].value_counts(normalize=True).min()
    return {
        "shape": name,
        "rows": len(frame),
        "classes": int(frame["label"].nunique()),
        "rarest_share": round(float(rare), 4),
        "looplab": mine,
        "sklearn": theirs,
        "gap_macro_f1": mine["macro_f1"] - theirs["macro_f1"],
        "within_goal": mine["macro_f1"] >= theirs["macro_f1"] - GOAL_GAP,
    }


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'shape':<18}{'rows':>6}{'test':>6}  {'looplab mF1':>11}{'sklearn mF1':>12}{'gap':>7}"
        f"  {'looplab bal':>11}{'sklearn bal':>12}  {'gated on':<18}{'constant':<9}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        mine, theirs = r["looplab"], r["sklearn"]
        verdict = "refused" if mine["constant_refused"] else "PASSED"
        lines.append(
            f"{r['shape']:<18}{r['rows']:>6}{mine['n_test']:>6}  {mine['macro_f1']:>11.3f}"
            f"{theirs['macro_f1']:>12.3f}{100 * r['gap_macro_f1']:>+7.1f}  "
            f"{mine['balanced_accuracy']:>11.3f}{theirs['balanced_accuracy']:>12.3f}  "
            f"{mine['gate_metric']:<18}{verdict:<9}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="half-size tables (under 5 min)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="only these")
    args = parser.parse_args()
    names = args.shape or list(SHAPES)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="looplab-shapes-") as tmp:
        for name in names:
            print(f"{name} ...", file=sys.stderr, flush=True)
            results.append(run_shape(name, args.quick, Path(tmp)))
    print(table(results))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    within = sum(r["within_goal"] for r in results)
    imbalanced = [r for r in results if r["shape"] in IMBALANCED]
    refused = sum(r["looplab"]["constant_refused"] for r in imbalanced)
    worst = min(results, key=lambda r: r["gap_macro_f1"])
    fields = {
        "shapes": len(results),
        "within_1pt": f"{within}/{len(results)}",
        "worst_gap_points": f"{100 * worst['gap_macro_f1']:+.1f}",
        "worst_shape": worst["shape"],
        "constant_refused_imbalanced": f"{refused}/{len(imbalanced)}",
        "seconds": f"{time.perf_counter() - started:.0f}",
        "goal_met": within == len(results) and refused == len(imbalanced),
    }
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
