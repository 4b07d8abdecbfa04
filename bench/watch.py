"""Watch: what each monitoring signal sees, window by window, beside NannyML's CBPE.

Data: the US census employment survey, Massachusetts 2015 to 2018 (shipped inside the ``nannyml``
wheel, read as files and never imported here; ``make test-data``). A logistic regression
(looplab's tabular pipeline) is trained on 60% of 2015; 20% of 2015 is its held-out reference
(calibration, accuracy per category); the last 20% is never seen and feeds the replays.

Windows of ``--window`` rows (10,000), each judged exactly as the monitor judges a window:
``looplab.watch.reference.summarise`` + ``test_window`` (drift, CBPE estimate, mean predicted
probabilities, each feature's effect on accuracy) and ``looplab.watch.levels.assess_window``
with labels on a share of the window (5% and 1%):

* the **audit** sample: that share drawn at random (``looplab.watch.auditing.drawn``);
* **volunteered** feedback: the same share, but five times likelier on wrong answers.

Replays:

* ``census``: the 2016, 2017 and 2018 surveys, cut in windows (real drift: inputs and base rate
  both move);
* ``none``: unseen 2015 rows (no change);
* ``prior``: unseen 2015 rows resampled so that the employed share rises by 15 points (a change
  of P(y); P(x|y) kept);
* ``concept``: unseen 2015 rows where half the labels of people under 30 are flipped (a change of
  P(y|x) in one region);
* ``covariate``: unseen 2015 rows resampled towards the categories of four features where the
  reference's held-out accuracy is within a point of the overall one (inputs move, accuracy
  should not).

Each replay is one stream of consecutive windows of the deployed model (the census years one
stream of 19), judged as the monitor judges them: each window's label tests pool the stream's
latest 2, 4 and 8 windows too (``looplab.watch.levels.POOLS``). ``--seeds K`` draws every
stream K times (new rows, new labelled shares) for figures less at the mercy of one draw.

Per window: real accuracy, the estimate and its status, audit and volunteered accuracy, level;
and NannyML 0.13.1's CBPE on the same windows (``bench/.peers/nannyml``, ``make bench-peers``;
fitted on the same held-out reference). Without that venv the bench says so and runs looplab.

Goals: ``performance`` on >= 90% of windows whose accuracy fell >= 3 points and on <= 5% of
windows whose accuracy did not change (within 1 point); every ``concept`` window
``contradicted``; the estimate's mean absolute error no worse than NannyML's where the
assumption holds (``none``, ``covariate``).

Usage::

    python bench/watch.py [--quick] [--json] [--window 10000] [--per-scenario 6] [--seeds 1]
        [--no-peer]

The last line is ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from looplab.learn import train  # noqa: E402
from looplab.watch import auditing, effects, levels  # noqa: E402
from looplab.watch.drift import Profile  # noqa: E402
from looplab.watch.drift.sketch import CategoryCounts  # noqa: E402
from looplab.watch.performance import check_calibration  # noqa: E402
from looplab.watch.reference import PREDICTION, frame_of, summarise, test_window  # noqa: E402

NANNYML_PY = ROOT / "bench" / ".peers" / "nannyml" / "bin" / "python"
FEATURES = [
    "AGEP", "SCHL", "MAR", "RELP", "DIS", "ESP", "CIT", "MIG",
    "MIL", "ANC", "NATIVITY", "DEAR", "DEYE", "DREM", "SEX", "RAC1P",
]  # fmt: skip
SCHEMA = {f: ("numeric" if f == "AGEP" else "categorical") for f in FEATURES}
DATA = "nannyml/datasets/data/employment_MA_{}.pq"
RATES = (0.05, 0.01)
SEED = 17


def census() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(2015, 2016-2018), inputs as strings but AGEP, label 1 = employed."""
    import importlib.util

    spec = importlib.util.find_spec("nannyml")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("census data missing: run `make test-data` (nannyml wheel, --no-deps)")
    root = Path(next(iter(spec.submodule_search_locations))).parent

    def read(name: str) -> pd.DataFrame:
        return pd.read_parquet(root / DATA.format(name))

    ref = read("reference")
    ana = read("analysis").merge(read("analysis_target"), on="id")
    out = []
    for df in (ref, ana):
        frame = pd.DataFrame({"AGEP": df["AGEP"].astype(float)})
        for c in FEATURES[1:]:
            frame[c] = df[c].astype(str)
        frame["y"] = (df["employed"] == 1).astype(int)
        frame["year"] = df["year"].astype(int)
        out.append(frame)
    return out[0], out[1]


class Watched:
    """The model and its reference, as ``looplab.watch.reference.build_reference`` stores them."""

    def __init__(self, fit: pd.DataFrame, held: pd.DataFrame) -> None:
        self.model = train.build_pipeline("tabular", FEATURES).fit(_records(fit), fit["y"].values)
        self.classes = np.asarray(self.model.classes_)
        profile = Profile.from_frame(frame_of(_records(fit), SCHEMA, []), SCHEMA, seed=SEED)
        sample = fit.sample(500, random_state=SEED)
        profile.schema[PREDICTION] = "categorical"
        profile.categorical[PREDICTION] = CategoryCounts.reference(
            self.predict(sample)[1].astype(str).astype(object), max_categories=200
        )
        proba, pred = self.predict(held)
        self.held_proba, self.held_y = proba, held["y"].values
        calibration = check_calibration(proba, held["y"].values, classes=self.classes)
        correct = pred == held["y"].values
        cells = frame_of(_records(held), SCHEMA, [])
        self.ref = {
            "profile": profile.to_dict(),
            "calibration": calibration.to_dict(),
            "accuracy_by": effects.accuracy_by_feature(profile, cells, correct.tolist()),
        }
        self.accuracy = calibration.accuracy
        self.by_feature = self.ref["accuracy_by"]["features"]

    def predict(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        proba = self.model.predict_proba(_records(df))
        return proba, self.classes[proba.argmax(axis=1)]

    def window(self, df: pd.DataFrame, seed: int) -> dict[str, Any]:
        """Everything the monitor stores for a window, plus the truth the bench knows."""
        proba, pred = self.predict(df)
        labels = [str(p) for p in pred]
        conf = proba.max(axis=1)
        rows = _records(df)
        probas = [{str(c): float(v) for c, v in zip(self.classes, p, strict=True)} for p in proba]
        batch = [(rows, labels, conf.tolist(), probas)]
        profile, window, confidence, sums = summarise(self.ref, SCHEMA, batch, seed=seed)
        report = test_window(self.ref, profile, window, confidence, seed, sums)
        right = pred == df["y"].values
        return {"report": report, "right": right, "truth": df["y"].astype(str).values,
                "proba": proba[:, 1], "pred": pred}  # fmt: skip


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df[FEATURES].to_dict(orient="records")


def labels(w: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    right, truth = w["right"][mask], w["truth"][mask]
    values, counts = np.unique(truth, return_counts=True)
    n = int(mask.sum())
    return {"n": n, "accepted": int(right.sum()), "accuracy": float(right.mean()) if n else None,
            "labels": {str(v): int(c) for v, c in zip(values, counts, strict=True)}}  # fmt: skip


def judge(
    w: dict[str, Any],
    rate: float,
    ids: list[str],
    rng: np.random.Generator,
    earlier: list[levels.Window],
) -> dict:
    """The window's level with an audit sample and volunteered feedback at ``rate``.

    ``earlier`` holds the stream's windows before it at this rate, newest first; this window is
    put in front of it, for the next.
    """
    audit = np.array([auditing.drawn(i, rate) for i in ids])
    volunteered = rng.random(len(ids)) < np.where(w["right"], rate, min(1.0, 5 * rate))
    a, v = labels(w, audit), labels(w, volunteered)
    verdict = levels.assess_window(w["report"], v, a, earlier=earlier)
    earlier.insert(0, (w["report"], v, a))
    est = verdict["estimate"]
    return {
        "rate": rate,
        "estimate": est["accuracy"],
        "status": est["status"],
        "audit": a["accuracy"],
        "audit_n": a["n"],
        "volunteered": v["accuracy"],
        "volunteered_n": v["n"],
        "level": verdict["level"],
        "alarm_source": verdict["alarm_source"],
        "alarm_windows": verdict["alarm_windows"],
    }


def scenarios(
    pool: pd.DataFrame, watched: Watched, size: int, per: int, rng: np.random.Generator
) -> list[tuple[str, pd.DataFrame]]:
    """Replays from unseen 2015 rows: none, prior, concept, covariate."""
    out: list[tuple[str, pd.DataFrame]] = []
    base = pool["y"].mean()
    target = min(0.95, base + 0.15)
    w_prior = np.where(pool["y"] == 1, target / base, (1 - target) / (1 - base))
    overall = watched.ref["accuracy_by"]["overall"]
    flat = np.ones(len(pool))
    for name in ("SCHL", "MAR", "RELP", "CIT"):
        entry = watched.by_feature[name]
        cats = watched.ref["profile"]["categorical"][name]["categories"]
        close = {
            c
            for c, acc, n in zip(cats, entry["accuracy"], entry["n"], strict=False)
            if abs(acc - overall) < 0.01 and n >= 50
        }
        flat *= np.where(pool[name].isin(close), 2.0, 1.0)
    for _k in range(per):
        out.append(("none", pool.sample(size, replace=True, random_state=rng.integers(2**31))))
    p = w_prior / w_prior.sum()
    for _k in range(per):
        out.append(("prior", pool.iloc[rng.choice(len(pool), size, p=p)]))
    for _k in range(per):
        df = pool.sample(size, replace=True, random_state=rng.integers(2**31)).copy()
        flip = (df["AGEP"] < 30).values & (rng.random(size) < 0.5)
        df.loc[flip, "y"] = 1 - df.loc[flip, "y"]
        out.append(("concept", df))
    for _k in range(per):
        out.append(("covariate", pool.iloc[rng.choice(len(pool), size, p=flat / flat.sum())]))
    return out


def nannyml_cbpe(watched: Watched, windows: list[dict[str, Any]], size: int) -> list | str:
    """NannyML's CBPE accuracy per window, fitted on the same held-out reference; or why not."""
    if not NANNYML_PY.exists():
        return "not installed (run make bench-peers)"
    script = """
import sys, numpy as np, pandas as pd, os
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
import nannyml as nml
d = np.load(sys.argv[1])
ref = pd.DataFrame({"p": d["ref_p"], "y": d["ref_y"], "pred": (d["ref_p"] > 0.5).astype(int)})
ana = pd.DataFrame({"p": d["p"], "pred": d["pred"]})
est = nml.CBPE(problem_type="classification_binary", y_pred_proba="p", y_pred="pred",
               y_true="y", metrics=["accuracy"], chunk_size=int(d["size"][0]))
est.fit(ref)
r = est.estimate(ana).to_df()
print(",".join(str(v) for v in r[("accuracy", "value")].tolist()))
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(
            path,
            ref_p=watched.held_proba[:, 1],
            ref_y=watched.held_y,
            p=np.concatenate([w["proba"] for w in windows]),
            pred=np.concatenate([w["pred"] for w in windows]).astype(int),
            size=np.array([size]),
        )
        env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
        done = subprocess.run(
            [str(NANNYML_PY), "-c", script, str(path)], capture_output=True, text=True, env=env
        )
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    values = [float(v) for v in done.stdout.strip().split(",")]
    return values[: len(windows)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 windows per replay (< 5 min)")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--per-scenario", type=int, default=6)
    parser.add_argument("--no-peer", action="store_true", help="skip NannyML")
    parser.add_argument(
        "--seeds", type=int, default=1, help="replay every stream this many times (new draws)"
    )
    args = parser.parse_args()
    per = 2 if args.quick else args.per_scenario
    started = time.perf_counter()
    ref, later = census()
    ref = ref.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    n = len(ref)
    fit, held, pool = ref[: int(0.6 * n)], ref[int(0.6 * n) : int(0.8 * n)], ref[int(0.8 * n) :]
    watched = Watched(fit, held)
    windows: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(SEED + 1000 * seed)
        replays: list[tuple[str, pd.DataFrame]] = []
        for year in sorted(later["year"].unique()):
            rows = later[later["year"] == year].sample(frac=1.0, random_state=int(year) + seed)
            for k in range(min(per if args.quick else 99, len(rows) // args.window)):
                replays.append(
                    (f"census {year}", rows.iloc[k * args.window : (k + 1) * args.window])
                )
        replays += scenarios(pool, watched, args.window, per, rng)
        # Each replay is a stream of consecutive windows of one deployed model, as a monitor
        # sees them (the census years one stream); the label tests pool a stream's latest.
        streams: dict[tuple[str, float], list[levels.Window]] = {}
        for name, df in replays:
            i = len(windows)
            w = watched.window(df, seed=SEED + i)
            windows.append(w)
            ids = [f"{v:032x}" for v in rng.integers(2**62, size=len(df))]  # like served ids
            real = float(w["right"].mean())
            for rate in RATES:
                earlier = streams.setdefault((name.split()[0], rate), [])
                verdict = judge(w, rate, ids, rng, earlier)
                results.append({"seed": seed, "window": i, "replay": name, "real": real, **verdict})
    peer = None if args.no_peer else nannyml_cbpe(watched, windows, args.window)
    if isinstance(peer, list):
        for r in results:
            r["nannyml"] = peer[r["window"]]
    summary = summarise_results(results, watched.accuracy, peer)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print_table(results, watched.accuracy, peer)
    if args.json:
        print(json.dumps({"summary": summary, "windows": results}, indent=1, default=str))
    print_summary(summary)
    return 0


def summarise_results(results: list[dict], reference: float, peer: Any) -> dict[str, Any]:
    def share(rows: list[dict], test: Any) -> tuple[float | None, int]:
        return (float(np.mean([test(r) for r in rows])) if rows else None), len(rows)

    out: dict[str, Any] = {"reference_accuracy": reference}
    for rate in RATES:
        rows = [r for r in results if r["rate"] == rate]
        fell = [r for r in rows if r["real"] <= reference - 0.03]
        same = [r for r in rows if abs(r["real"] - reference) < 0.01]
        concept = [r for r in rows if r["replay"] == "concept"]
        tag = f"{round(rate * 100)}pct"
        out[f"perf_on_drop_{tag}"] = share(fell, lambda r: r["level"] == "performance")
        out[f"perf_on_same_{tag}"] = share(same, lambda r: r["level"] == "performance")
        out[f"contradicted_concept_{tag}"] = share(concept, lambda r: r["status"] == "contradicted")
        steady = [r for r in same if r["replay"] not in ("concept", "prior")]
        out[f"contradicted_unchanged_{tag}"] = share(
            steady, lambda r: r["status"] == "contradicted"
        )
        covers = [r for r in rows if r["audit_n"]]
        out[f"audit_abs_err_{tag}"] = float(np.mean([abs(r["audit"] - r["real"]) for r in covers]))
    holds = [r for r in results if r["rate"] == RATES[0] and r["replay"] in ("none", "covariate")]
    out["estimate_mae_where_assumption_holds"] = float(
        np.mean([abs(r["estimate"] - r["real"]) for r in holds])
    )
    if isinstance(peer, list):
        out["nannyml_mae_where_assumption_holds"] = float(
            np.mean([abs(r["nannyml"] - r["real"]) for r in holds])
        )
    else:
        out["nannyml"] = peer
    return out


def print_table(results: list[dict], reference: float, peer: Any) -> None:
    print(f"reference (2015 held-out) accuracy {reference:.1%}; windows judged at 5% and 1% labels")
    head = f"{'#':>3} {'replay':<12} {'rate':>4} {'real':>6} {'CBPE':>6} {'status':<12} "
    head += f"{'audit':>6} {'n':>4} {'volun.':>6} {'level':<12} {'pool':>4} {'NannyML':>7}"
    print(head)
    for r in results:
        nml = f"{r['nannyml']:.1%}" if "nannyml" in r else "-"
        audit = f"{r['audit']:.1%}" if r["audit"] is not None else "-"
        vol = f"{r['volunteered']:.1%}" if r["volunteered"] is not None else "-"
        print(
            f"{r['window']:>3} {r['replay']:<12} {r['rate']:>4.0%} {r['real']:>6.1%} "
            f"{r['estimate']:>6.1%} {r['status']:<12} {audit:>6} {r['audit_n']:>4} {vol:>6} "
            f"{r['level']:<12} {r['alarm_windows'] or '':>4} {nml:>7}"
        )
    if not isinstance(peer, list) and peer is not None:
        print(f"NannyML: {peer}")


def print_summary(s: dict[str, Any]) -> None:
    def fmt(v: Any) -> str:
        if isinstance(v, tuple):
            return "na" if v[0] is None else f"{v[0]:.3f}(n={v[1]})"
        return f"{v:.4f}" if isinstance(v, float) else str(v).replace(" ", "_")

    keys = [k for k in s if k not in ("nannyml",)]
    print("RESULT " + " ".join(f"{k}={fmt(s[k])}" for k in keys))


if __name__ == "__main__":
    sys.exit(main())
