"""Alerts: a JSON POST to a webhook, signed with an HMAC of the body, retried with back-off.

The receiver checks ``X-Looplab-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<X-Looplab-Timestamp>.<raw body>`` under the shared secret, and should refuse old timestamps so
a captured request cannot be replayed. Every alert is also written to the log, so an unreachable
webhook never hides one. :func:`send_alert` is the ``alert`` job's handler: a fired trigger
queues the job (:func:`looplab.watch.triggers.act`), a worker delivers it to the project's
``webhook_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from looplab.core import projects
from looplab.core.errors import LooplabError
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, Project

log = logging.getLogger("looplab.watch.alerts")

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


def sign(body: bytes, secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(body: bytes, secret: str, timestamp: str, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(body, secret, timestamp), signature)


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    status: int | None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
        }


def send(
    url: str,
    payload: dict[str, Any],
    *,
    secret: str | None,
    attempts: int = 5,
    backoff: float = 0.5,
    timeout: float = 5.0,
    client: httpx.Client | None = None,
    sleep: Any = time.sleep,
) -> Delivery:
    """POST ``payload``; retry network errors and 408/425/429/5xx with exponential back-off.

    Other 4xx answers are final (the receiver refused the alert; retrying cannot help).
    """
    log.warning("alert: %s", json.dumps(payload, default=str))
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    owned = client is None
    client = client or httpx.Client(timeout=timeout)
    status: int | None = None
    error = ""
    try:
        for attempt in range(1, attempts + 1):
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Looplab-Timestamp": stamp,
                "User-Agent": "looplab-alerts",
            }
            if secret:
                headers["X-Looplab-Signature"] = sign(body, secret, stamp)
            try:
                response = client.post(url, content=body, headers=headers)
                status = response.status_code
                if status < 300:
                    return Delivery(True, attempt, status)
                error = f"HTTP {status}"
                if status not in RETRY_STATUSES:
                    return Delivery(False, attempt, status, error)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
        return Delivery(False, attempts, status, error)
    finally:
        if owned:
            client.close()


def send_alert(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Job handler: deliver one alert to the project's webhook (always also to the log)."""
    with store.read() as session:
        project = session.get(Project, job.project_id)
        url = projects.setting(project, "webhook_url") if project is not None else None
    if not url:
        log.warning("alert (no webhook_url set): %s", job.params)
        return {"logged_only": True}
    delivery = send(url, dict(job.params), secret=settings.webhook_secret)
    if not delivery.ok:
        raise RuntimeError(
            f"webhook delivery failed after {delivery.attempts} attempts: {delivery.error}"
        )
    return delivery.to_dict()


def queue_model_unavailable(store: Store, project_name: str, error: LooplabError) -> int | None:
    """Queue an alert that ``project_name``'s production model cannot be loaded, once.

    Every replica that fails to load the same version for the same reason would raise it; the
    first one queues it and the others find it among the project's alerts. Returns the job id,
    or None when an identical alert was already queued.
    """
    from looplab.core import jobs

    payload = {
        "project": project_name,
        "alert": "model_unavailable",
        "model_version": error.details.get("model"),
        "reason": error.details.get("reason"),
        "message": error.message,
    }
    with store.write() as session:
        project = session.scalar(select(Project).where(Project.name == project_name))
        if project is None:
            return None
        earlier = session.scalars(
            select(Job.params)
            .where(Job.project_id == project.id, Job.kind == "alert")
            .order_by(Job.id.desc())
            .limit(50)
        )
        if any(
            p.get("alert") == "model_unavailable"
            and (p.get("model_version"), p.get("reason"))
            == (payload["model_version"], payload["reason"])
            for p in earlier
        ):
            return None
        job = jobs.enqueue(session, "alert", project_id=project.id, params=payload, dedupe=False)
        return job.id
