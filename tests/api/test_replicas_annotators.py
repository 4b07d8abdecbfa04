"""Scale out on PostgreSQL: two `looplab serve` replicas and two `looplab worker` processes, 16
annotators spread across both replicas, labeling as fast as they can for a while.

Nothing a person was told went through may be lost, no record may be held by two people at once
(overlap 1), and no request may fail with a 5xx.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation
from looplab.govern import access
from tests.conftest import pg_schema
from tests.core.test_jobs_processes import _healthy, free_port, processes, wait_for
from tests.textdata import add_text_project

pytestmark = pytest.mark.postgres

ANNOTATORS = 16
SECONDS = 12.0


def _label(base: str, token: str, stop: threading.Event, log: dict[str, list]) -> None:
    """One person: next, answer, again; every answer the server acknowledged is remembered."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        while not stop.is_set():
            got = client.get("/api/v1/projects/news/queue/next")
            log["status"].append(got.status_code)
            if got.status_code != 200:
                if got.status_code >= 500:
                    log["errors"].append(got.text[:300])
                time.sleep(0.05)
                continue
            record = got.json()["record"]["id"]
            log["held"].append(record)
            sent = client.post(
                "/api/v1/projects/news/annotations",
                json={"record_id": record, "label": "sport", "seconds": 1.0},
            )
            log["status"].append(sent.status_code)
            if sent.status_code == 201:
                log["acked"].append(sent.json()["id"])
            elif sent.status_code >= 500:
                log["errors"].append(sent.text[:300])


def test_sixteen_annotators_across_two_replicas_lose_nothing(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with pg_schema() as url:
        store = Store.from_settings(Settings(home=home, database_url=url))
        try:
            store.upgrade()
            with store.write() as session:
                add_text_project(session, n=3_000)
                access.create_user(session, "root", "admin", actor="t")
                tokens = [
                    access.create_user(session, f"a{i}", "annotator", actor="t")[1]
                    for i in range(ANNOTATORS)
                ]
            env = {
                **os.environ,
                "LOOPLAB_HOME": str(home),
                "LOOPLAB_DATABASE_URL": url,
                "LOOPLAB_RUN_WORKER": "false",
                "LOOPLAB_MONITOR_EVERY_SECONDS": "3600",
            }
            with processes() as start:
                bases = []
                for i in range(2):
                    port = free_port()
                    start("serve", "--port", str(port), env=env, log=tmp_path / f"serve{i}.log")
                    bases.append(f"http://127.0.0.1:{port}")
                for i in range(2):
                    start("worker", "--poll", "0.2", env=env, log=tmp_path / f"worker{i}.log")
                for base in bases:
                    wait_for(lambda b=base: _healthy(b), 90, f"the replica at {base}")
                logs = [{"status": [], "held": [], "acked": [], "errors": []} for _ in tokens]
                stop = threading.Event()
                people = [
                    threading.Thread(target=_label, args=(bases[i % 2], t, stop, logs[i]))
                    for i, t in enumerate(tokens)
                ]
                for person in people:
                    person.start()
                time.sleep(SECONDS)
                stop.set()
                for person in people:
                    person.join(timeout=60)
            statuses = Counter(s for log in logs for s in log["status"])
            errors = [e for log in logs for e in log["errors"]]
            assert not errors and not any(s >= 500 for s in statuses), (statuses, errors[:3])
            acked = [a for log in logs for a in log["acked"]]
            assert len(acked) > 100, statuses  # they did label, on both replicas
            with store.read() as session:
                stored = set(
                    session.scalars(select(Annotation.id).where(Annotation.origin == "human"))
                )
                per_record = session.execute(
                    select(Annotation.record_id, func.count())
                    .where(Annotation.origin == "human", Annotation.status == "active")
                    .group_by(Annotation.record_id)
                    .having(func.count() > 1)
                ).all()
            assert set(acked) <= stored  # every acknowledged write is in the store
            # Overlap 1: no record was handed to two people, so none got two answers.
            assert per_record == []
            held = Counter(r for log in logs for r in log["held"])
            assert max(held.values()) == 1, held.most_common(3)
        finally:
            store.dispose()
