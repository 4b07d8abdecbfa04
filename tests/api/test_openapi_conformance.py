"""The OpenAPI schema tells the truth: schemathesis, every check, against a live server.

A real ``looplab serve`` runs in a subprocess on a free port of 127.0.0.1 over a seeded workspace
(a text project with imported labels, a served model, an admin token). Schemathesis reads its
``/openapi.json`` and runs every check on every operation: server errors, undeclared status
codes, answers that break their schema (a date-time without a zone), schema-valid requests
refused, schema-invalid ones accepted, wrong ``Allow`` headers, ignored authentication. Any failure
fails the test with schemathesis's report (each failure with a curl line to reproduce it).

The run is bounded by a fixed seed and a small number of examples per operation (about a minute
on two cores). Its settings are in ``schemathesis.toml`` next to this file; the hooks that keep
the run's own admin token alive are in ``conformance_hooks.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from looplab.api import create_app
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.govern import access
from looplab.learn import promotion
from tests import textdata

HERE = Path(__file__).parent
ADMIN, SPARE = "conformance-admin", "spare-admin"
# Per operation and phase; with the fixed seed a run is repeatable. Raise them to look harder
# by hand: LOOPLAB_CONFORMANCE_EXAMPLES=100.
EXAMPLES = os.environ.get("LOOPLAB_CONFORMANCE_EXAMPLES", "8")
SEED = os.environ.get("LOOPLAB_CONFORMANCE_SEED", "20250101")


def schemathesis_or_skip() -> None:
    try:
        import schemathesis  # noqa: F401
    except ImportError:
        reason = "schemathesis is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run the conformance test)")
        pytest.skip(reason)


def seed_workspace(home: Path) -> str:
    """A project ``news`` with 60 labeled records and v1 in production; the admin's token."""
    store = Store(Settings(home=home).store_url)
    store.upgrade()
    with store.write() as session:
        _, token = access.create_user(session, ADMIN, "admin", actor="test")
        access.create_user(session, SPARE, "admin", actor="test")
        access.create_user(session, "ann", "annotator", actor="test")
        textdata.add_text_project(session, "news", n=60)
    textdata.train(store, home)
    promotion.promote_version(store, "news", "v1", actor="test")
    store.dispose()
    return token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(base URL, admin token)`` of a ``looplab serve`` over a seeded workspace."""
    home = tmp_path / "ws"
    token = seed_workspace(home)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLAB_")}
    env |= {"LOOPLAB_HOME": str(home), "LOOPLAB_RUN_WORKER": "false"}
    # The server runs this checkout's looplab (the one that trained v1), even where the
    # installed package is another worktree's.
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1]), env.get("PYTHONPATH", "")])
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "looplab.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to a minute for the app to import and listen
            if server.poll() is not None:
                break
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("looplab serve did not answer /healthz within a minute")
        if server.poll() is not None:
            pytest.fail(f"looplab serve exited: {(tmp_path / 'server.log').read_text()[-3000:]}")
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_the_live_server_conforms_to_its_openapi_schema(
    live_server: tuple[str, str], tmp_path: Path
) -> None:
    schemathesis_or_skip()
    base, token = live_server
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "SCHEMATHESIS_HOOKS": "conformance_hooks",
        "LOOPLAB_CONFORMANCE_ADMIN": ADMIN,
        "LOOPLAB_CONFORMANCE_SPARE": SPARE,
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        # Not a performance test: only a call that hangs for a minute fails the time check that
        # "all" includes (its default limit, 10 s, is met by a loaded CI machine's first predict).
        "--request-timeout",
        "120",
        "--max-response-time",
        "60",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    report = run.stdout + run.stderr
    assert "Failures:" not in report and "Errors:" not in report, report[-20000:]
    assert run.returncode == 0, report[-20000:]
    assert "Tested:" in report  # it ran operations, not just loaded the schema


def test_every_api_operation_declares_its_errors_in_the_one_shape(tmp_path: Path) -> None:
    schema = create_app(Settings(home=tmp_path, run_worker=False)).openapi()
    assert "HTTPValidationError" not in json.dumps(schema)
    error = {"$ref": "#/components/schemas/ErrorOut"}
    assert set(schema["components"]["schemas"]["ErrorOut"]["properties"]) == {"error"}
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            declared = {int(code) for code in responses if code[0] in "45"}
            if operation.get("security"):
                assert {401, 403} <= declared, (method, path)
            if "{" in path:
                assert {404, 409, 422} <= declared, (method, path)
            for code in declared:
                assert responses[str(code)]["content"]["application/json"]["schema"] == error
            checked += 1
    assert checked >= 30
    predict = schema["paths"]["/api/v1/projects/{name}/predict"]["post"]
    assert "503" in predict["responses"]
