"""Model serving under load: looplab's predict endpoint against bare FastAPI and MLflow, one model.

All three servers answer with the same fitted scikit-learn pipeline: the one looplab trains on
digits (a tabular project with fields ``p0`` .. ``p63``, 1,000 imported labels, one ``train`` job,
``v1`` promoted), read back with :func:`looplab.learn.train.load_model` from the registry row.

* looplab: ``looplab serve`` on a fresh workspace in a temporary folder
  (``LOOPLAB_RUN_WORKER=false``), ``POST /api/v1/projects/digits/predict`` with
  ``{"records": [{...}]}`` and an annotator's token. Auth, validation, the response model and the
  prediction log are all on, as in production.
* bare FastAPI: an ``async def`` endpoint, written to the temporary folder at run time, that loads
  the same artifact once and returns ``predict_proba`` for the posted records (same body), run with
  ``uvicorn`` from looplab's venv. No auth, no validation, no logging: the floor for this stack.
* MLflow (``bench/.peers/mlflow``, ``make bench-peers``): the same fitted pipeline logged with
  ``mlflow.sklearn.log_model`` (skops format, ``pyfunc_predict_fn="predict_proba"``) into a file
  store, served by ``mlflow models serve --env-manager local``. The pipeline's FunctionTransformers
  call looplab functions, so the model is logged with ``code_paths=[looplab/]``: MLflow ships that
  code inside the model and puts it on ``sys.path`` at load time; looplab is not installed in the
  peer venv. Each MLflow JSON input format is checked against the reference probabilities and
  timed; the fastest correct one is used and named in the output.

All servers run side by side (idle ones cost nothing) and are measured in turns, so a burst of
other work on the shared box hits them alike: 50 warm-up calls each, then single-record latency
p50/p95/p99 over 1,000 sequential calls per server on one keep-alive connection (10 rounds of 100,
server order rotating), then 8 clients (one thread and one connection each) for ``--duration``
seconds per server in slices of about 5 s, counting non-200 answers and errors. Server CPU (from
/proc) and the client's own CPU are printed: client and server share the machine's cores, so read
the figures as ratios on this box, not as capacity.

looplab then gets 200 predict-then-feedback pairs (half accepts, half corrections, each sent right
after its prediction, while the log row may still be buffered), is stopped gracefully (SIGTERM,
then wait), and the ``predictions`` and ``feedback`` tables are counted against the 200 and 201
answers: lost rows are rows the client was told about but the store does not hold. Last, a
crash round: looplab is started again on the same store, loaded by the clients for a few
seconds and killed with SIGKILL; the answered predictions missing from the store are counted,
with how long before the kill the oldest of them was answered (the README says: about one
flush interval, ``LOOPLAB_PREDICTION_FLUSH_SECONDS``).

Goals: looplab throughput >= 0.9x bare FastAPI and >= 1.5x MLflow, looplab p99 < 10 ms, zero lost
feedback and zero lost prediction log rows after a graceful stop.

Usage::

    python bench/serve.py [--duration 20] [--no-peer] [--no-crash] [--profile DIR] [--json]
                          [--quick] [--crash-only] [--crash-runs N]

``--profile DIR`` records the looplab server with py-spy during its throughput run (raw collapsed
stacks and an SVG flame graph in DIR). The last line is ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
MLFLOW_VENV = ROOT / "bench" / ".peers" / "mlflow"
PROJECT = "digits"
TRAIN_ROWS = 1000
WARMUP = 50
LATENCY_CALLS = 1000
CLIENTS = 8
LATENCY_ROUNDS = 10
SLICE_SECONDS = 5.0
FEEDBACK_PAIRS = 200
CRASH_AFTER_SECONDS = 3.0
CRASH_RUNS = 3
ANNOTATORS = 8  # labeling the same SQLite store during the crash rounds
POOL_ROWS = 20_000  # unlabeled records for them

GOAL_VS_BARE = 0.9
GOAL_VS_MLFLOW = 1.5
GOAL_P99_MS = 10.0

# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


@contextlib.contextmanager
def server(
    command: list[str], env: dict[str, str], health: str, log: Path, timeout: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in a new session, wait for ``health`` to answer 200, stop it after."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{command[0]} exited with {proc.returncode}; log {log}:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{health} did not answer within {timeout:.0f} s; log {log}")
            time.sleep(0.3)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> float:
    """SIGTERM the process group we started (its own children only), wait; return seconds taken."""
    started = time.perf_counter()
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # `mlflow models serve` may leave its uvicorn child behind in the group for a moment.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 0)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
    return time.perf_counter() - started


# -- the model ------------------------------------------------------------------------------------


@dataclass
class Workspace:
    home: Path
    token: str
    artifact: str
    sha256: str
    rows: list[dict[str, float]]  # held-out digits, as records
    labels: list[str]  # their true labels
    annotator_tokens: list[str] = field(default_factory=list)


def build_workspace(home: Path) -> Workspace:
    """A digits project with TRAIN_ROWS imported labels, v1 trained and promoted, one annotator."""
    from sklearn.datasets import load_digits

    from looplab import worker
    from looplab.collect import ingest
    from looplab.core import jobs, projects
    from looplab.core.settings import Settings
    from looplab.core.store import Store
    from looplab.govern import access
    from looplab.learn import registry

    x, y = load_digits(return_X_y=True)
    fields = [f"p{i}" for i in range(x.shape[1])]
    records = [dict(zip(fields, row.tolist(), strict=True)) for row in x]
    # The training rows go in as a user's would: a JSONL file with a label column.
    labeled = home / "digits-train.jsonl"
    labeled.parent.mkdir(parents=True, exist_ok=True)
    with labeled.open("w") as handle:
        for i in range(TRAIN_ROWS):
            handle.write(json.dumps({**records[i], "label": str(y[i])}) + "\n")
    settings = Settings(home=home)
    store = Store.from_settings(settings)
    store.upgrade()
    with store.write() as session:
        project = projects.create_project(
            session,
            PROJECT,
            task="tabular",
            labels=[str(d) for d in range(10)],
            fields=fields,
            actor="bench",
        )
        report = ingest.import_file(
            session, project, labeled, fields=fields, label="label", actor="bench"
        )
        assert report.imported == report.labels == TRAIN_ROWS, report
        jobs.enqueue(session, "train", project_id=project.id)
        _, token = access.create_user(session, "bench", "annotator", actor="bench")
    worker.drain(store, settings)
    with store.write() as session:
        project = projects.get_project(session, PROJECT)
        row = registry.promote(
            session,
            project,
            registry.get_version(session, project, "v1"),
            actor="bench",
            reason="benchmark",
        )
        prod = registry.production(session, project)
        assert prod is not None, row
        artifact, sha = str(registry.artifact_file(session, prod).resolve()), prod.sha256
    # An unlabeled pool (jittered digits, so no two share a content hash) for the annotators
    # who label during the crash rounds, each with an account of their own.
    rng = np.random.default_rng(0)
    pool = home / "digits-pool.jsonl"
    with pool.open("w") as handle:
        for i in range(POOL_ROWS):
            row = x[i % len(x)] + rng.uniform(0, 0.5, size=x.shape[1]).round(3)
            handle.write(json.dumps(dict(zip(fields, row.tolist(), strict=True))) + "\n")
    with store.write() as session:
        project = projects.get_project(session, PROJECT)
        ingest.import_file(session, project, pool, fields=fields, actor="bench")
        annotators = [
            access.create_user(session, f"annotator{k}", "annotator", actor="bench")[1]
            for k in range(ANNOTATORS)
        ]
    store.dispose()
    return Workspace(
        home=home,
        token=token,
        artifact=artifact,
        sha256=sha,
        rows=records[TRAIN_ROWS:],
        labels=[str(v) for v in y[TRAIN_ROWS:]],
        annotator_tokens=annotators,
    )


def count_rows(home: Path) -> tuple[int, int]:
    """Rows in ``predictions`` and ``feedback`` of the workspace store."""
    from sqlalchemy import func, select

    from looplab.core.settings import Settings
    from looplab.core.store import Store
    from looplab.core.tables import Feedback, Prediction

    store = Store.from_settings(Settings(home=home))
    try:
        with store.read() as session:
            predictions = session.scalar(select(func.count()).select_from(Prediction)) or 0
            feedback = session.scalar(select(func.count()).select_from(Feedback)) or 0
    finally:
        store.dispose()
    return int(predictions), int(feedback)


BARE_APP = '''\
"""Bare FastAPI: the same artifact, predict_proba for the posted records. No auth, no logging."""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from looplab.learn.train import load_model

model = load_model({artifact!r}, {sha256!r})
app = FastAPI()


class Body(BaseModel):
    records: list[dict[str, Any]]


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {{"status": "ok"}}


@app.post("/predict")
async def predict(body: Body) -> dict[str, Any]:
    return {{"probabilities": model.predict_proba(body.records).tolist()}}
'''

MLFLOW_LOG = '''\
"""Log looplab's fitted pipeline with MLflow (run by the peer venv's python)."""

import json
import sys

import mlflow
import mlflow.sklearn
import skops.io as sio

sys.path.insert(0, {root!r})  # only to read the artifact; the served model carries its own copy
from looplab.learn.train import load_model

model = load_model({artifact!r}, {sha256!r})
with open({artifact!r}, "rb") as fh:
    trusted = sio.get_untrusted_types(data=fh.read())
mlflow.set_tracking_uri({tracking!r})
mlflow.set_experiment("looplab-bench")
with mlflow.start_run():
    info = mlflow.sklearn.log_model(
        model,
        name="digits",
        code_paths=[{code!r}],
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=trusted,
    )
print(json.dumps({{"model_uri": info.model_uri, "mlflow": mlflow.__version__}}))
'''


def mlflow_bodies(record: dict[str, float]) -> dict[str, dict[str, Any]]:
    """One record in each MLflow JSON input format that can reach a records pipeline."""
    return {
        "inputs (list of dicts)": {"inputs": [record]},
        "dataframe_records": {"dataframe_records": [record]},
        "dataframe_split": {
            "dataframe_split": {"columns": list(record), "data": [list(record.values())]}
        },
        "instances (list of dicts)": {"instances": [record]},
    }


# -- the load -------------------------------------------------------------------------------------


@dataclass
class Side:
    """How one server is called: a body for a record, and a check of a 200 answer."""

    name: str
    base_url: str
    path: str
    body: Callable[[dict[str, float]], dict[str, Any]]
    headers: dict[str, str] = field(default_factory=dict)
    pid: int = 0
    profile: bool = False


@dataclass
class Tally:
    ms: list[float] = field(default_factory=list)
    ok: int = 0
    non_200: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def fail(self, detail: str) -> None:
        if len(self.samples) < 3:
            self.samples.append(detail[:300])

    def merge(self, other: Tally) -> None:
        self.ms += other.ms
        self.ok += other.ok
        self.non_200 += other.non_200
        self.errors += other.errors
        self.samples += other.samples[: max(0, 3 - len(self.samples))]


def client_for(side: Side) -> httpx.Client:
    headers = {**side.headers, "Content-Type": "application/json"}
    return httpx.Client(base_url=side.base_url, headers=headers, timeout=60)


def call_loop(
    side: Side,
    client: httpx.Client,
    bodies: list[bytes],
    offset: int,
    *,
    calls: int | None = None,
    until: float | None = None,
) -> Tally:
    """Sequential single-record calls on one keep-alive connection."""
    tally = Tally()
    i = 0
    while (calls is None or i < calls) and (until is None or time.perf_counter() < until):
        content = bodies[(offset + i) % len(bodies)]
        i += 1
        started = time.perf_counter()
        try:
            response = client.post(side.path, content=content)
        except httpx.HTTPError as exc:
            tally.errors += 1
            tally.fail(repr(exc))
            continue
        took = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            tally.non_200 += 1
            tally.fail(f"{response.status_code}: {response.text}")
            continue
        tally.ok += 1
        tally.ms.append(took)
    return tally


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` for ``seconds`` into collapsed stacks (``--format raw``)."""
    return subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def load_slice(
    side: Side, bodies: list[bytes], seconds: float, spy_to: Path | None
) -> dict[str, Any]:
    """CLIENTS clients, one thread and one connection each, for ``seconds``."""
    results = [Tally() for _ in range(CLIENTS)]
    clients = [client_for(side) for _ in range(CLIENTS)]
    try:
        cpu0, client0 = cpu_seconds(side.pid), time.process_time()
        started = time.perf_counter()
        until = started + seconds

        def work(i: int) -> None:
            results[i] = call_loop(side, clients[i], bodies, i * 97, until=until)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        spy = py_spy(side.pid, seconds - 1, spy_to) if spy_to is not None else None
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(side.pid) - cpu0
        client_cpu = time.process_time() - client0
        if spy is not None:
            spy.wait(timeout=60)
    finally:
        for client in clients:
            client.close()
    load = Tally()
    for r in results:
        load.merge(r)
    return {"tally": load, "seconds": elapsed, "server_cpu": server_cpu, "client_cpu": client_cpu}


def measure_all(
    sides: list[Side],
    rows: list[dict[str, float]],
    duration: float,
    profile: Path | None,
    latency_calls: int = LATENCY_CALLS,
) -> dict[str, dict[str, Any]]:
    """Latency, then throughput, interleaved across the servers.

    The box is shared (other work may start or stop at any moment), so no server gets a quiet
    or a busy stretch to itself: latency runs in LATENCY_ROUNDS blocks of sequential calls per
    server in turn, and the load in slices of about SLICE_SECONDS per server in turn, the order
    rotating each round.
    """
    bodies = {s.name: [json.dumps(s.body(r)).encode() for r in rows] for s in sides}
    clients = {s.name: client_for(s) for s in sides}
    warm = {s.name: call_loop(s, clients[s.name], bodies[s.name], 0, calls=WARMUP) for s in sides}
    latency = {s.name: Tally() for s in sides}
    per_round = latency_calls // LATENCY_ROUNDS
    print(
        f"  latency: {latency_calls} sequential calls per server, in {LATENCY_ROUNDS} rounds ...",
        file=sys.stderr,
        flush=True,
    )
    for r in range(LATENCY_ROUNDS):
        for s in sides[r % len(sides) :] + sides[: r % len(sides)]:
            got = call_loop(
                s, clients[s.name], bodies[s.name], WARMUP + r * per_round, calls=per_round
            )
            latency[s.name].merge(got)
    for client in clients.values():
        client.close()

    slices = max(1, round(duration / SLICE_SECONDS))
    seconds = duration / slices
    print(
        f"  throughput: {CLIENTS} clients, {duration:.0f} s per server in {slices} slices ...",
        file=sys.stderr,
        flush=True,
    )
    load = {s.name: Tally() for s in sides}
    totals = {s.name: {"seconds": 0.0, "server_cpu": 0.0, "client_cpu": 0.0} for s in sides}
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    for r in range(slices):
        for s in sides[r % len(sides) :] + sides[: r % len(sides)]:
            spy_to = profile / f"{s.name}-{r}.txt" if profile is not None and s.profile else None
            sliced = load_slice(s, bodies[s.name], seconds, spy_to)
            load[s.name].merge(sliced["tally"])
            for key in totals[s.name]:
                totals[s.name][key] += sliced[key]
    out = {}
    for s in sides:
        lat, ld, tot = latency[s.name], load[s.name], totals[s.name]
        w = warm[s.name]
        out[s.name] = {
            "p50_ms": pct(lat.ms, 50),
            "p95_ms": pct(lat.ms, 95),
            "p99_ms": pct(lat.ms, 99),
            "max_ms": max(lat.ms, default=float("nan")),
            "latency_ok": lat.ok,
            "rps": ld.ok / tot["seconds"],
            "requests": ld.ok,
            "seconds": tot["seconds"],
            "load_p50_ms": pct(ld.ms, 50),
            "load_p99_ms": pct(ld.ms, 99),
            "non_200": w.non_200 + lat.non_200 + ld.non_200,
            "errors": w.errors + lat.errors + ld.errors,
            "ok_total": w.ok + lat.ok + ld.ok,
            "server_cpu_ms_per_req": tot["server_cpu"] * 1000 / max(ld.ok, 1),
            "server_cores": tot["server_cpu"] / tot["seconds"],
            "client_cores": tot["client_cpu"] / tot["seconds"],
            "samples": w.samples + lat.samples + ld.samples,
        }
    return out


# -- the three servers ----------------------------------------------------------------------------


def start_looplab(
    stack: contextlib.ExitStack, ws: Workspace, tmp: Path, log_name: str = "looplab.log"
) -> tuple[Side, Any]:
    port = free_port()
    env = {
        **os.environ,
        "LOOPLAB_HOME": str(ws.home),
        "LOOPLAB_PORT": str(port),
        "LOOPLAB_HOST": "127.0.0.1",
        "LOOPLAB_RUN_WORKER": "false",
    }
    base = f"http://127.0.0.1:{port}"
    print("  looplab: starting `looplab serve` ...", file=sys.stderr, flush=True)
    proc = stack.enter_context(
        server([str(VENV_BIN / "looplab"), "serve"], env, f"{base}/healthz", tmp / log_name)
    )
    side = Side(
        name="looplab",
        base_url=base,
        path=f"/api/v1/projects/{PROJECT}/predict",
        body=lambda r: {"records": [r]},
        headers={"Authorization": f"Bearer {ws.token}"},
        pid=proc.pid,
        profile=True,
    )
    return side, proc


def finish_looplab(side: Side, proc: Any, ws: Workspace, result: dict[str, Any]) -> None:
    """Feedback round, graceful stop, then count what the store holds."""
    result.update(feedback_round(side, ws))
    print("  looplab: graceful stop (SIGTERM) ...", file=sys.stderr, flush=True)
    stop_seconds = stop(proc)
    predictions, feedback = count_rows(ws.home)
    served = result["ok_total"] + result["feedback_predictions"]
    result.update(
        {
            "stop_seconds": stop_seconds,
            "exit_code": proc.returncode,
            "predictions_answered": served,
            "predictions_logged": predictions,
            "lost_predictions": max(0, served - predictions),
            "feedback_logged": feedback,
            "lost_feedback": max(0, result["feedback_ok"] - feedback),
        }
    )


def feedback_round(side: Side, ws: Workspace) -> dict[str, Any]:
    """FEEDBACK_PAIRS predictions, each followed at once by feedback (accept or correct)."""
    print(f"  looplab: {FEEDBACK_PAIRS} predict + feedback pairs ...", file=sys.stderr, flush=True)
    ok = predicted = failed = 0
    ms: list[float] = []
    samples: list[str] = []
    with httpx.Client(base_url=side.base_url, headers=side.headers, timeout=60) as client:
        for i in range(FEEDBACK_PAIRS):
            record, truth = ws.rows[i], ws.labels[i]
            try:
                response = client.post(side.path, json=side.body(record))
            except httpx.HTTPError as exc:
                failed += 1
                samples.append(f"predict: {exc!r}")
                continue
            if response.status_code != 200:
                failed += 1
                samples.append(f"predict {response.status_code}: {response.text[:200]}")
                continue
            predicted += 1
            pid = response.json()["predictions"][0]["id"]
            body: dict[str, Any] = (
                {"prediction_id": pid, "accepted": True}
                if i % 2 == 0
                else {"prediction_id": pid, "label": truth}
            )
            started = time.perf_counter()
            try:
                response = client.post(f"/api/v1/projects/{PROJECT}/feedback", json=body)
            except httpx.HTTPError as exc:  # a server error may close the connection
                failed += 1
                samples.append(f"feedback: {exc!r}")
                continue
            ms.append((time.perf_counter() - started) * 1000)
            if response.status_code == 201:
                ok += 1
            else:
                failed += 1
                samples.append(f"feedback {response.status_code}: {response.text[:200]}")
    return {
        "feedback_predictions": predicted,
        "feedback_ok": ok,
        "feedback_failed": failed,
        "feedback_p50_ms": pct(ms, 50),
        "feedback_p99_ms": pct(ms, 99),
        "feedback_samples": samples[:3],
    }


def annotate_loop(base: str, token: str, stop: threading.Event, done: list[int]) -> None:
    """One annotator: next record, answer it, again, until ``stop`` or the server is gone."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while not stop.is_set():
            try:
                response = client.get(f"/api/v1/projects/{PROJECT}/queue/next")
                record = response.json().get("record") if response.status_code == 200 else None
                if record is None:
                    return
                response = client.post(
                    f"/api/v1/projects/{PROJECT}/annotations",
                    json={"record_id": record["id"], "label": str(record["id"] % 10)},
                )
            except httpx.HTTPError:
                return  # the server is gone
            if response.status_code == 201:
                done.append(1)


def logged_ids(home: Path) -> set[str]:
    from sqlalchemy import select

    from looplab.core.settings import Settings
    from looplab.core.store import Store
    from looplab.core.tables import Prediction

    store = Store.from_settings(Settings(home=home))
    try:
        with store.read() as session:
            return set(session.scalars(select(Prediction.id)))
    finally:
        store.dispose()


def crash_once(
    ws: Workspace, tmp: Path, labeling: Side, run: int, seconds: float
) -> dict[str, Any]:
    """Predict clients on looplab, annotators on it and on a labeling replica; SIGKILL it.

    Counted right after the kill (``unlogged``: what feedback would answer 404 on) and again
    after looplab has been started and stopped once more on the same workspace (``lost``: what
    no server will ever write).
    """
    answered: list[tuple[float, str]] = []  # (monotonic time of the answer, prediction id)
    labeled: list[int] = []
    with contextlib.ExitStack() as stack:
        side, proc = start_looplab(stack, ws, tmp, log_name=f"looplab-crash-{run}.log")
        bodies = [json.dumps(side.body(r)).encode() for r in ws.rows]
        with client_for(side) as client:  # the model is loaded on the first call
            client.post(side.path, content=bodies[0], timeout=300).raise_for_status()
        stop_at = time.monotonic() + seconds + 30
        stop_labeling = threading.Event()

        def work(k: int) -> None:
            with client_for(side) as client:
                i = k * 97
                while time.monotonic() < stop_at:
                    i += 1
                    try:
                        response = client.post(side.path, content=bodies[i % len(bodies)])
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 200:
                        pid = response.json()["predictions"][0]["id"]
                        answered.append((time.monotonic(), pid))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(CLIENTS)]
        threads += [
            threading.Thread(
                target=annotate_loop,
                args=((side if k % 2 else labeling).base_url, token, stop_labeling, labeled),
            )
            for k, token in enumerate(ws.annotator_tokens)
        ]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        killed_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stop_labeling.set()
        for thread in threads:
            thread.join(timeout=60)
    at_kill = logged_ids(ws.home)
    with contextlib.ExitStack() as stack:  # a restart on the same workspace, then a clean stop
        start_looplab(stack, ws, tmp, log_name=f"looplab-crash-{run}-restart.log")
    after = logged_ids(ws.home)
    unlogged = [(t, pid) for t, pid in answered if pid not in at_kill]
    lost = [(t, pid) for t, pid in answered if pid not in after]
    return {
        "answered": len(answered),
        "labeled": len(labeled),
        "unlogged": len(unlogged),
        "unlogged_oldest_ms": round((killed_at - min(t for t, _ in unlogged)) * 1000, 1)
        if unlogged
        else 0.0,
        "lost": len(lost),
        "lost_oldest_ms": round((killed_at - min(t for t, _ in lost)) * 1000, 1) if lost else 0.0,
    }


def crash_round(
    ws: Workspace, tmp: Path, runs: int = CRASH_RUNS, seconds: float = CRASH_AFTER_SECONDS
) -> dict[str, Any]:
    """The README's crash statement, measured under mixed load, ``runs`` times.

    Each run: CLIENTS predict clients on a fresh looplab server and ANNOTATORS people labeling
    the same SQLite store (half through that server, half through a second looplab replica, so
    its prediction log competes for SQLite's write lock in-process and across processes), then
    SIGKILL of the predicting server.
    """
    from looplab.core.settings import Settings

    flush_seconds = Settings().prediction_flush_seconds
    print(
        f"  looplab: {runs} crash rounds: {CLIENTS} predict clients and {ANNOTATORS} annotators "
        f"for {seconds:.0f} s, then SIGKILL ...",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        labeling, _ = start_looplab(stack, ws, tmp, log_name="looplab-labeling.log")
        per_run = [crash_once(ws, tmp, labeling, run, seconds) for run in range(runs)]
    return {
        "crash_runs": per_run,
        "crash_answered": sum(r["answered"] for r in per_run),
        "crash_labeled": sum(r["labeled"] for r in per_run),
        "crash_unlogged": sum(r["unlogged"] for r in per_run),
        "crash_unlogged_oldest_ms": max(r["unlogged_oldest_ms"] for r in per_run),
        "crash_lost": sum(r["lost"] for r in per_run),
        "crash_lost_oldest_ms": max(r["lost_oldest_ms"] for r in per_run),
        "flush_seconds": flush_seconds,
    }


def start_bare(stack: contextlib.ExitStack, ws: Workspace, tmp: Path) -> Side:
    app_dir = tmp / "bare"
    app_dir.mkdir()
    (app_dir / "bare_app.py").write_text(BARE_APP.format(artifact=ws.artifact, sha256=ws.sha256))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        str(VENV_BIN / "uvicorn"),
        "bare_app:app",
        "--app-dir",
        str(app_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    print("  bare: starting uvicorn ...", file=sys.stderr, flush=True)
    proc = stack.enter_context(
        server(command, dict(os.environ), f"{base}/healthz", tmp / "bare.log")
    )
    return Side(
        name="bare", base_url=base, path="/predict", body=lambda r: {"records": [r]}, pid=proc.pid
    )


def reference_proba(ws: Workspace, n: int) -> np.ndarray:
    from looplab.learn.train import load_model

    return np.asarray(load_model(ws.artifact, ws.sha256).predict_proba(ws.rows[:n]))


def start_mlflow(
    stack: contextlib.ExitStack, ws: Workspace, tmp: Path
) -> tuple[Side, dict[str, Any]]:
    import looplab

    python = MLFLOW_VENV / "bin" / "python"
    env = {
        **os.environ,
        "PATH": f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_TRACKING_URI": (tmp / "mlruns").resolve().as_uri(),
        "VIRTUAL_ENV": str(MLFLOW_VENV),
    }
    env.pop("PYTHONPATH", None)
    code = Path(looplab.__file__).resolve().parent  # the looplab code this run uses
    script = tmp / "mlflow_log.py"
    script.write_text(
        MLFLOW_LOG.format(
            root=str(code.parent),
            artifact=ws.artifact,
            sha256=ws.sha256,
            tracking=env["MLFLOW_TRACKING_URI"],
            code=str(code),
        )
    )
    print("  mlflow: logging the model ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [str(python), str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"mlflow log_model failed:\n{done.stderr[-3000:]}")
    logged = json.loads(done.stdout.strip().splitlines()[-1])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        logged["model_uri"],
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    print("  mlflow: starting `mlflow models serve` ...", file=sys.stderr, flush=True)
    proc = stack.enter_context(
        server(command, env, f"{base}/ping", tmp / "mlflow.log", timeout=300)
    )
    formats = pick_mlflow_format(ws, base)
    usable = [f for f in formats if f["correct"]]
    if not usable:
        raise RuntimeError(f"no MLflow input format gave the reference probabilities: {formats}")
    best = min(usable, key=lambda f: f["p50_ms"])
    side = Side(
        name="mlflow",
        base_url=base,
        path="/invocations",
        body=lambda r: mlflow_bodies(r)[best["format"]],
        pid=proc.pid,  # the group leader; cpu_seconds adds its uvicorn child
    )
    return side, {"version": logged["mlflow"], "format": best["format"], "formats": formats}


def pick_mlflow_format(
    ws: Workspace, base: str, n: int = 20, calls: int = 300
) -> list[dict[str, Any]]:
    """Check each input format against the reference probabilities, then time it.

    The formats are timed in turns of 50 calls, so a burst of other work on the box does not
    decide the pick.
    """
    expected = reference_proba(ws, n)
    out: list[dict[str, Any]] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for name in mlflow_bodies(ws.rows[0]):
            correct, note = True, ""
            for i in range(n):
                response = client.post("/invocations", json=mlflow_bodies(ws.rows[i])[name])
                if response.status_code != 200:
                    correct, note = False, f"{response.status_code}: {response.text[:160]}"
                    break
                got = np.asarray(response.json()["predictions"], dtype=float).reshape(-1)
                if got.shape != expected[i].shape or not np.allclose(got, expected[i], atol=1e-9):
                    correct, note = False, f"wrong answer {str(got)[:80]}"
                    break
            out.append({"format": name, "correct": correct, "ms": [], "note": note})
        headers = {"Content-Type": "application/json"}
        for turn in range(calls // 50):
            for entry in out:
                if not entry["correct"]:
                    continue
                for record in ws.rows[turn * 50 : (turn + 1) * 50]:
                    body = json.dumps(mlflow_bodies(record)[entry["format"]]).encode()
                    started = time.perf_counter()
                    client.post("/invocations", content=body, headers=headers)
                    entry["ms"].append((time.perf_counter() - started) * 1000)
    for entry in out:
        entry["p50_ms"] = pct(entry.pop("ms"), 50)
        print(
            f"  mlflow: format {entry['format']}: "
            + (
                f"p50 {entry['p50_ms']:.2f} ms"
                if entry["correct"]
                else f"unusable ({entry['note']})"
            ),
            file=sys.stderr,
            flush=True,
        )
    return out


# -- report ---------------------------------------------------------------------------------------


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]], note: str) -> int:
    ours, bare, peer = results["looplab"], results["bare"], results.get("mlflow")
    cores = os.cpu_count()
    print(
        f"digits, one record per call; {args.latency_calls} sequential calls, then {CLIENTS} "
        f"clients for {args.duration:.0f} s per server, interleaved; client and servers share "
        f"{cores} cores"
    )
    header = (
        f"{'':22} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'req/s':>7} {'load p99':>9} "
        f"{'non-200':>8} {'srv CPU/req':>12} {'srv cores':>10} {'client cores':>13}"
    )
    print(header)
    rows = [("looplab", ours), ("bare FastAPI+uvicorn", bare)]
    if peer:
        rows.append((f"MLflow {peer['version']}", peer))
    for name, r in rows:
        print(
            f"{name:22} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['p99_ms']:>7.2f} "
            f"{r['rps']:>7.0f} {r['load_p99_ms']:>9.1f} {r['non_200'] + r['errors']:>8} "
            f"{r['server_cpu_ms_per_req']:>9.2f} ms {r['server_cores']:>10.2f} "
            f"{r['client_cores']:>13.2f}"
        )
    if peer:
        print(
            f"mlflow input format: {peer['format']} (fastest correct of: "
            + ", ".join(
                f"{f['format']} {f['p50_ms']:.2f} ms" if f["correct"] else f"{f['format']} unusable"
                for f in peer["formats"]
            )
            + ")"
        )
    else:
        print(note)
    for name, r in rows:
        if r["samples"]:
            print(f"{name} failures: " + " | ".join(r["samples"]))
    print(
        f"looplab prediction log: {ours['predictions_answered']} answered, "
        f"{ours['predictions_logged']} rows after a graceful stop ({ours['stop_seconds']:.1f} s), "
        f"lost {ours['lost_predictions']}"
    )
    print(
        f"looplab feedback: {ours['feedback_ok']} of {FEEDBACK_PAIRS} answered 201 "
        f"(p50 {ours['feedback_p50_ms']:.1f} ms, p99 {ours['feedback_p99_ms']:.1f} ms, sent right "
        f"after each prediction), {ours['feedback_logged']} rows, lost {ours['lost_feedback']}"
    )
    if ours["feedback_samples"]:
        print("feedback failures: " + " | ".join(ours["feedback_samples"]))
    if "crash_lost" in ours:
        print(
            f"looplab hard crash (SIGKILL, {CLIENTS} predict clients and {ANNOTATORS} annotators "
            f"labeling the same SQLite store), flush interval "
            f"{ours['flush_seconds'] * 1000:.0f} ms; per run: answered, labeled meanwhile, not in "
            "the store at the kill (oldest ms before it), lost after a restart (oldest):"
        )
        for r in ours["crash_runs"]:
            print(
                f"    {r['answered']:>6} {r['labeled']:>6} {r['unlogged']:>5} "
                f"({r['unlogged_oldest_ms']:.0f} ms) {r['lost']:>5} ({r['lost_oldest_ms']:.0f} ms)"
            )

    vs_bare = ours["rps"] / bare["rps"]
    vs_mlflow = ours["rps"] / peer["rps"] if peer else float("nan")
    goals = [
        (f"throughput >= {GOAL_VS_BARE}x bare FastAPI", f"{vs_bare:.2f}x", vs_bare >= GOAL_VS_BARE),
        (
            f"throughput >= {GOAL_VS_MLFLOW}x MLflow",
            f"{vs_mlflow:.2f}x" if peer else "not run",
            (vs_mlflow >= GOAL_VS_MLFLOW) if peer else None,
        ),
        (f"p99 < {GOAL_P99_MS:.0f} ms", f"{ours['p99_ms']:.2f} ms", ours["p99_ms"] < GOAL_P99_MS),
        (
            "zero lost feedback (and every feedback answered 201)",
            f"{ours['lost_feedback']} lost, {ours['feedback_ok']}/{FEEDBACK_PAIRS} answered 201",
            ours["lost_feedback"] == 0 and ours["feedback_ok"] == FEEDBACK_PAIRS,
        ),
        (
            "zero lost prediction log rows",
            str(ours["lost_predictions"]),
            ours["lost_predictions"] == 0,
        ),
        (
            "no non-200 answers",
            str(ours["non_200"] + ours["errors"]),
            ours["non_200"] + ours["errors"] == 0,
        ),
    ]
    print(
        f"ratios: looplab/bare {vs_bare:.2f}x, looplab/MLflow "
        + (f"{vs_mlflow:.2f}x" if peer else "n/a")
        + "; by server CPU per request (less sensitive to other load on the box): looplab/bare "
        + f"{bare['server_cpu_ms_per_req'] / ours['server_cpu_ms_per_req']:.2f}x"
        + (
            f", looplab/MLflow {peer['server_cpu_ms_per_req'] / ours['server_cpu_ms_per_req']:.2f}x"
            if peer
            else ""
        )
    )
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before / after: {args.load_before:.1f} / {load_after:.1f}")
    for name, value, ok in goals:
        verdict = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {verdict:4}  {name}: {value}")
    passed = all(ok is not False for _, _, ok in goals)
    fields: dict[str, Any] = {
        "looplab_p50_ms": round(ours["p50_ms"], 2),
        "looplab_p95_ms": round(ours["p95_ms"], 2),
        "looplab_p99_ms": round(ours["p99_ms"], 2),
        "looplab_rps": round(ours["rps"]),
        "bare_p50_ms": round(bare["p50_ms"], 2),
        "bare_p99_ms": round(bare["p99_ms"], 2),
        "bare_rps": round(bare["rps"]),
        "looplab_cpu_ms": round(ours["server_cpu_ms_per_req"], 2),
        "bare_cpu_ms": round(bare["server_cpu_ms_per_req"], 2),
    }
    if peer:
        fields.update(
            {
                "mlflow_p50_ms": round(peer["p50_ms"], 2),
                "mlflow_p99_ms": round(peer["p99_ms"], 2),
                "mlflow_rps": round(peer["rps"]),
                "mlflow_cpu_ms": round(peer["server_cpu_ms_per_req"], 2),
                "looplab_vs_mlflow": round(vs_mlflow, 2),
            }
        )
    fields.update(
        {
            "looplab_vs_bare": round(vs_bare, 2),
            "non_200": ours["non_200"] + ours["errors"],
            "lost_predictions": ours["lost_predictions"],
            "lost_feedback": ours["lost_feedback"],
            "feedback_ok": ours["feedback_ok"],
        }
    )
    if "crash_lost" in ours:
        fields.update(
            {
                "crash_answered": ours["crash_answered"],
                "crash_labeled": ours["crash_labeled"],
                "crash_unlogged": ours["crash_unlogged"],
                "crash_unlogged_oldest_ms": ours["crash_unlogged_oldest_ms"],
                "crash_lost": ours["crash_lost"],
                "crash_lost_oldest_ms": ours["crash_lost_oldest_ms"],
            }
        )
    fields.update(
        {
            "load_before": round(args.load_before, 1),
            "load_after": round(load_after, 1),
            "verdict": "PASS" if passed else "FAIL",
        }
    )
    if args.json:
        print(json.dumps({**fields, "runs": results}, default=str))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0 if passed else 1


def crash_report(args: argparse.Namespace, crash: dict[str, Any]) -> int:
    """``--crash-only``: the kill -9 rounds' figures and their RESULT line."""
    print(
        f"looplab hard crash (SIGKILL, {CLIENTS} predict clients and {ANNOTATORS} annotators "
        f"labeling the same SQLite store), flush interval {crash['flush_seconds'] * 1000:.0f} ms"
    )
    for r in crash["crash_runs"]:
        print(
            f"  answered {r['answered']}, labeled {r['labeled']}; not in the store at the kill "
            f"{r['unlogged']} (oldest {r['unlogged_oldest_ms']:.0f} ms before it); lost after a "
            f"restart {r['lost']} (oldest {r['lost_oldest_ms']:.0f} ms)"
        )
    fields = {k: v for k, v in crash.items() if k != "crash_runs"}
    fields["load_before"] = round(args.load_before, 1)
    fields["load_after"] = round(os.getloadavg()[0], 1)
    if args.json:
        print(json.dumps(crash, default=str))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per server")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow")
    parser.add_argument("--profile", type=Path, help="py-spy the looplab server into this folder")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--no-crash", action="store_true", help="skip the kill -9 round")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--quick", action="store_true", help="5 s of load, 300 latency calls, 2 crash rounds"
    )
    parser.add_argument(
        "--crash-only", action="store_true", help="only the kill -9 rounds under mixed load"
    )
    parser.add_argument("--crash-runs", type=int, help=f"kill -9 rounds (default {CRASH_RUNS})")
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]
    args.latency_calls = LATENCY_CALLS
    crash_runs = args.crash_runs or CRASH_RUNS
    if args.quick:
        args.duration, args.latency_calls = min(args.duration, 5.0), 300
        crash_runs = args.crash_runs or 2

    tmp = Path(tempfile.mkdtemp(prefix="looplab-bench-serve-"))
    try:
        started = time.perf_counter()
        ws = build_workspace(tmp / "home")
        print(
            f"workspace: digits v1 trained on {TRAIN_ROWS} labels and promoted in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        if args.crash_only:
            return crash_report(args, crash_round(ws, tmp, runs=crash_runs))
        note, peer_info = "", None
        with contextlib.ExitStack() as stack:  # stops every server by its pid on the way out
            ours, proc = start_looplab(stack, ws, tmp)
            sides = [ours, start_bare(stack, ws, tmp)]
            if args.no_peer:
                note = "mlflow: skipped (--no-peer)"
            elif not (MLFLOW_VENV / "bin" / "mlflow").exists():
                note = "mlflow: not installed (run make bench-peers)"
            else:
                side, peer_info = start_mlflow(stack, ws, tmp)
                sides.append(side)
            results = measure_all(sides, ws.rows, args.duration, args.profile, args.latency_calls)
            finish_looplab(ours, proc, ws, results["looplab"])
        if not args.no_crash:
            results["looplab"].update(crash_round(ws, tmp, runs=crash_runs))
        if peer_info is not None:
            results["mlflow"].update(peer_info)
        return report(args, results, note)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
