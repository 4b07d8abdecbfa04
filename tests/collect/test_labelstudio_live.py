"""Against a real Label Studio: looplab's export goes in through its import API, and the answers
come back with their annotators, cancelled marks, ground truth, lead times and predictions.

Needs Label Studio 1.23.2 in ``bench/.peers/labelstudio`` (``make bench-peers``); skipped, with
that reason, where it is not installed. The server runs on 127.0.0.1 on a free port with a data
directory of its own, and is stopped by its process id. Its first start runs its migrations
(60 to 90 s here), so this test is slow: run it with ``pytest -m peers``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from looplab.collect import export, ingest
from looplab.core import projects
from looplab.core.store import Store

ROOT = Path(__file__).parents[2]
LS = ROOT / "bench" / ".peers" / "labelstudio" / "bin" / "label-studio"
DATA = ROOT / "tests" / "data" / "labelstudio"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
ADMIN = "admin@looplab.test"
CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text" choice="single">
    <Choice value="business"/><Choice value="tech"/><Choice value="sport"/>
    <Choice value="politics"/>
  </Choices>
</View>"""

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(
        not LS.exists(),
        reason="Label Studio is not installed in bench/.peers/labelstudio (run `make bench-peers`)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A Label Studio of our own: fresh data dir, 127.0.0.1, stopped by its pid afterwards."""
    home = tmp_path_factory.mktemp("label-studio")
    port = _free_port()
    env = {
        **os.environ,
        "LATEST_VERSION_CHECK": "false",  # else it waits on a version check
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # `Authorization: Token` is off in 1.23
        "LABEL_STUDIO_BASE_DATA_DIR": str(home),
        "PATH": f"{LS.parent}:{os.environ.get('PATH', '')}",
    }
    command = [
        str(LS),
        "start",
        "--no-browser",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(home / "data"),
        "--username",
        ADMIN,
        "--password",
        "Passw0rd-looplab",
        "--user-token",
        TOKEN,
    ]
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"Label Studio exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio did not answer within 300 s; log {log}")
            time.sleep(1)
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Token {TOKEN}"}, timeout=120
        ) as client:
            yield client
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: its workers only
                proc.wait(timeout=10)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, f"{response.request.url}: {response.text[:2000]}"
    return response.json() if response.content else None


def test_label_studio_imports_looplab_export_with_its_annotators(
    label_studio: httpx.Client, store: Store
) -> None:
    # looplab: the real Label Studio export in, looplab's Label Studio export out.
    with store.write() as session:
        projects.create_project(
            session,
            "news",
            task="text",
            labels=["business", "tech", "sport", "politics"],
            actor="t",
        )
    with store.write() as session:
        project = projects.get_project(session, "news")
        ingest.import_file(session, project, DATA / "topic.json", actor="t")
    buffer = io.BytesIO()
    notes: list[str] = []
    with store.read() as session:
        export.export(
            session, projects.get_project(session, "news"), "label-studio", buffer, notes=notes
        )
    tasks = json.loads(buffer.getvalue())
    assert notes == []

    # Label Studio: the annotators exist (its import refuses unknown e-mails), then the import.
    client = label_studio
    known = {u["email"] for u in _ok(client.get("/api/users/"))}
    for email in ("alice@looplab.test", "bob@looplab.test"):
        if email not in known:
            _ok(client.post("/api/users/", json={"email": email, "username": email.split("@")[0]}))
    users = {u["id"]: u["email"] for u in _ok(client.get("/api/users/"))}
    ls_project = _ok(
        client.post("/api/projects/", json={"title": "from looplab", "label_config": CONFIG})
    )
    pid = ls_project["id"]
    imported = _ok(client.post(f"/api/projects/{pid}/import", json=tasks))
    assert imported["task_count"] == len(tasks)
    assert imported["annotation_count"] == sum(len(t["annotations"]) for t in tasks)
    assert imported["prediction_count"] == sum(len(t["predictions"]) for t in tasks)

    back = _ok(
        client.get(
            f"/api/projects/{pid}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )
    )

    def who(value: Any) -> str:
        return value["email"] if isinstance(value, dict) else users[value]

    def answers(items: list[dict], email: Any) -> Counter[tuple[Any, ...]]:
        return Counter(
            (
                task["data"]["text"],
                email(a),
                tuple(c for r in a["result"] for c in r["value"]["choices"]),
                a["was_cancelled"],
                a["ground_truth"],
                a.get("lead_time"),
            )
            for task in items
            for a in task["annotations"]
        )

    sent = answers(tasks, lambda a: a["completed_by"]["email"])
    got = answers(back, lambda a: who(a["completed_by"]))
    assert got == sent
    assert sum(sent.values()) == 19 and len({k[1] for k in sent}) == 3
    assert {k[4] for k in got} == {False, True}  # ground truth only where it was marked
    predictions = _ok(client.get("/api/predictions/", params={"project": pid}))
    assert sorted((p["model_version"], p["score"]) for p in predictions) == sorted(
        (p["model_version"], p["score"]) for t in tasks for p in t["predictions"]
    )
    assert len(predictions) == 2
    # Texts come back byte-exact, metadata with its types.
    assert sorted(json.dumps(t["data"], sort_keys=True) for t in back) == sorted(
        json.dumps(t["data"], sort_keys=True) for t in tasks
    )
