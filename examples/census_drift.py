"""Replay real drift: US census employment data, Massachusetts, 2015 to 2018.

The data (277,677 people, from the American Community Survey, as packaged by the ``nannyml``
wheel: ``nannyml/datasets/data/employment_MA_*.pq``) is read straight from the wheel's zip
(``--wheel``), from an installed nannyml package's folder (``make census`` installs it with
``--no-deps``), or from a wheel fetched with ``pip download nannyml --no-deps``. nannyml is never
imported.

What it does, all through looplab's own paths:

1. creates a tabular project ``census`` (16 inputs: age, schooling, marital status, ancestry,
   ...; label: employed yes/no) and imports the 2015 survey with its labels;
2. trains v1 on it and promotes it; its drift reference is its 2015 training records;
3. sets two trigger rules: drift in 2 consecutive windows -> targeted labeling + an alert;
   feedback accuracy below 0.7 (100+ answers) -> an alert;
4. replays each later year (its distinct rows, as the import kept for 2015) through
   ``POST /predict`` in ``--windows-per-year`` parts (one monitor window each),
   with feedback (the true label) on ``--feedback`` of the predictions, runs the monitor job
   after each quarter, and prints what it found, window by window.

Usage::

    python examples/census_drift.py [--home /tmp/census] [--per-year 20000] [--feedback 0.02]
                                    [--windows-per-year 2] [--raw] [--json]
                                    [--wheel nannyml-0.13.1-py3-none-any.whl]

Afterwards the workspace is a normal one: ``LOOPLAB_HOME=/tmp/census looplab monitor census``,
``looplab drift census --window 1d``, ``looplab triggers census``, or ``looplab serve`` and the
dashboard.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = [
    "AGEP", "SCHL", "MAR", "RELP", "DIS", "ESP", "CIT", "MIG",
    "MIL", "ANC", "NATIVITY", "DEAR", "DEYE", "DREM", "SEX", "RAC1P",
]  # fmt: skip
DATA = "nannyml/datasets/data/employment_MA_{}.pq"
RULES = [
    {"name": "persistent-drift", "when": "drift", "windows": 2, "actions": ["label", "alert"]},
    {
        "name": "feedback-accuracy",
        "when": "accuracy_below",
        "threshold": 0.7,
        "min_n": 100,
        "actions": ["alert"],
    },
]


def find_data(explicit: str | None, cache: Path) -> Path:
    """A nannyml wheel, or the folder of an installed nannyml package (found, never imported)."""
    if explicit:
        return Path(explicit)
    import importlib.util

    spec = importlib.util.find_spec("nannyml")  # locates the package without running it
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).parent
    found = sorted(cache.glob("nannyml-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    print(f"downloading the nannyml wheel (data only, --no-deps) into {cache} ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "nannyml", "--no-deps", "-d", str(cache), "-q"],
        check=True,
    )
    return sorted(cache.glob("nannyml-*.whl"))[-1]


def _read(source: Path, name: str) -> pd.DataFrame:
    path = DATA.format(name)
    if source.is_dir():
        return pd.read_parquet(source / path)
    with zipfile.ZipFile(source) as zf:
        return pd.read_parquet(io.BytesIO(zf.read(path)))


def load(source: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(2015 with labels, 2016-2018 with labels), inputs as the strings a CSV would give.

    ``source`` is a nannyml wheel or the folder holding an installed ``nannyml`` package.
    """
    ref = _read(source, "reference")
    ana = _read(source, "analysis").merge(_read(source, "analysis_target"), on="id")
    out = []
    for df in (ref, ana):
        frame = pd.DataFrame({"AGEP": df["AGEP"].astype(float)})
        for c in FEATURES[1:]:
            frame[c] = df[c].astype(str)
        frame["employed"] = np.where(df["employed"] == 1, "yes", "no")
        frame["year"] = df["year"].astype(int)
        out.append(frame)
    return out[0], out[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", default=None, help="workspace (default: a temporary folder)")
    parser.add_argument("--wheel", default=None, help="a downloaded nannyml wheel")
    parser.add_argument("--per-year", type=int, default=20_000, help="rows replayed per year")
    parser.add_argument("--windows-per-year", type=int, default=2)
    parser.add_argument("--feedback", type=float, default=0.02, help="share given feedback")
    parser.add_argument(
        "--raw", action="store_true", help="replay duplicate rows too (not like for like)"
    )
    parser.add_argument("--json", action="store_true", help="print the windows as JSON too")
    args = parser.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="looplab-census-"))
    os.environ["LOOPLAB_HOME"] = str(home)
    from fastapi.testclient import TestClient

    from looplab import configure, worker
    from looplab.api import create_app
    from looplab.collect import ingest
    from looplab.core import jobs, projects
    from looplab.core.settings import Settings
    from looplab.core.store import Store
    from looplab.core.tables import Job
    from looplab.govern import access
    from looplab.learn import registry

    settings = Settings(home=home, run_worker=False)
    store = Store.from_settings(settings)
    store.upgrade()
    ref, later = load(find_data(args.wheel, home / "demo"))
    started = time.perf_counter()

    csv = home / "demo" / "census-2015.parquet"
    csv.parent.mkdir(parents=True, exist_ok=True)
    ref.to_parquet(csv)
    with store.write() as session:
        project = projects.create_project(
            session, "census", task="tabular", labels=["yes", "no"], actor="census-demo"
        )
        report = ingest.import_file(
            session, project, csv, fields=FEATURES, label="employed", meta=["year"],
            actor="census-demo",
        )  # fmt: skip
        configure.update_settings(
            session,
            project,
            {"triggers": RULES, "monitor_min_predictions": 500, "retrain_every": 100},
            actor="census-demo",
        )
        jobs.enqueue(session, "train", project_id=project.id, params={"actor": "census-demo"})
        _, token = access.create_user(session, f"census-{os.getpid()}", "admin", actor="demo")
    worker.drain(store, settings)
    with store.write() as session:
        project = projects.get_project(session, "census")
        v1 = registry.get_version(session, project, "v1")
        registry.promote(session, project, v1, actor="census-demo", reason="trained on 2015")
        accuracy = v1.metrics.get("accuracy")
    print(
        f"imported {report.imported:,} people from 2015; v1 held-out accuracy {accuracy:.3f}; "
        f"workspace {home}",
        file=sys.stderr,
    )

    headers = {"Authorization": f"Bearer {token}"}
    rng = np.random.default_rng(0)
    windows: list[dict[str, Any]] = []
    app = create_app(settings, store=store)
    with TestClient(app) as client:
        for year in sorted(later["year"].unique()):
            rows = later[later["year"] == year]
            # Like for like: an import keeps one record per distinct content, so v1 and its
            # reference saw each distinct person-profile once (38,899 of 68,785 rows in 2015).
            # Replaying raw rows, with their duplicates, alarms on that difference alone.
            if not args.raw:
                rows = rows.drop_duplicates(subset=FEATURES)
            rows = rows.sample(min(args.per_year, len(rows)), random_state=int(year))
            bounds = np.linspace(0, len(rows), args.windows_per_year + 1).astype(int)
            for q in range(args.windows_per_year):
                part = rows.iloc[bounds[q] : bounds[q + 1]]
                inputs = part[FEATURES].to_dict(orient="records")
                truth = part["employed"].tolist()
                for s in range(0, len(inputs), 1000):
                    body = {"records": inputs[s : s + 1000]}
                    response = client.post("/api/v1/projects/census/predict", json=body,
                                           headers=headers)  # fmt: skip
                    response.raise_for_status()
                    preds = response.json()["predictions"]
                    app.state.prediction_log.flush()
                    for i in np.flatnonzero(rng.uniform(size=len(preds)) < args.feedback):
                        fb = {"prediction_id": preds[i]["id"], "label": truth[s + i]}
                        client.post("/api/v1/projects/census/feedback", json=fb,
                                    headers=headers).raise_for_status()  # fmt: skip
                with store.write() as session:
                    job_id = jobs.enqueue(
                        session, "monitor", project_id=project.id, params={"force": True}
                    ).id
                worker.drain(store, settings)
                with store.read() as session:
                    job = session.get(Job, job_id)
                    assert job is not None
                    result = dict(job.result or {})
                state = client.get("/api/v1/projects/census/monitor?limit=1", headers=headers)
                latest = state.json()["latest"]
                top = max(latest["features"].items(), key=lambda kv: kv[1]["effect_size"] or 0)
                windows.append(
                    {
                        "year": int(year),
                        "quarter": q + 1,
                        "window": latest["id"],
                        "n": latest["n"],
                        "alarm": latest["input_drift"],  # the input drift alarm (a warning)
                        "level": latest["level"],
                        "estimate_status": (latest["estimate"] or {}).get("status"),
                        "blamed": latest["blamed"],
                        "largest_effect": {
                            "feature": top[0],
                            "effect": top[1]["effect_size"],
                            "floor": top[1]["min_effect"],
                        },
                        "feedback_accuracy": (latest["feedback"] or {}).get("accuracy"),
                        "feedback_n": (latest["feedback"] or {}).get("n"),
                        "cbpe_accuracy": (latest["estimate"] or {}).get("accuracy"),
                        "fired": result.get("fired", []),
                    }
                )
                print_window(windows[-1])
    print(f"\n{len(windows)} windows in {time.perf_counter() - started:.0f} s; workspace {home}")
    print(f"  LOOPLAB_HOME={home} looplab monitor census")
    if args.json:
        print(json.dumps(windows, indent=1))
    alarms = {y: sum(w["alarm"] for w in windows if w["year"] == y) for y in (2016, 2017, 2018)}
    print(
        "RESULT " + " ".join(f"alarms_{y}={n}/{args.windows_per_year}" for y, n in alarms.items())
    )
    store.dispose()
    return 0


def print_window(w: dict[str, Any]) -> None:
    if w["year"] == 2016 and w["quarter"] == 1:
        print(
            "year  part window   n  drift  blamed            largest effect (floor)      "
            "feedback acc   CBPE   level        fired"
        )
    eff = w["largest_effect"]
    fb = "-" if w["feedback_accuracy"] is None else f"{w['feedback_accuracy']:.3f}"
    print(
        f"{w['year']} {w['quarter']:>5} {w['window']:>6} {w['n']:>6,}  "
        f"{'ALARM' if w['alarm'] else '  -  '}  {', '.join(w['blamed']) or '-':<16}  "
        f"{eff['feature']:>8} {eff['effect']:.3f} ({eff['floor']:g})      "
        f"{fb} (n={w['feedback_n']:>3})  {w['cbpe_accuracy']:.3f}  {w['level']:<11}  "
        f"{', '.join(w['fired']) or '-'}"
    )


if __name__ == "__main__":
    sys.exit(main())
