"""Webhook alerts against a real HTTP server on 127.0.0.1: signing, retry, back-off, give-up."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from looplab.watch import alerts


class Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver([])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_signed_body_verifies_and_tampering_does_not(receiver) -> None:
    state, url = receiver
    result = alerts.send(url, {"alarm": "drift", "project": "news"}, secret="s3cret")
    assert result.ok and result.attempts == 1 and result.status == 200
    headers, body = state.requests[0]
    assert json.loads(body) == {"alarm": "drift", "project": "news"}
    stamp, signature = headers["X-Looplab-Timestamp"], headers["X-Looplab-Signature"]
    assert alerts.verify(body, "s3cret", stamp, signature)
    assert not alerts.verify(body.replace(b"news", b"loan"), "s3cret", stamp, signature)
    assert not alerts.verify(body, "wrong", stamp, signature)


def test_retries_5xx_with_exponential_backoff(receiver) -> None:
    state, url = receiver
    state.statuses = [503, 500, 200]
    waits: list[float] = []
    result = alerts.send(url, {"a": 1}, secret="k", backoff=0.1, sleep=waits.append)
    assert result.ok and result.attempts == 3
    assert waits == [0.1, 0.2]
    assert len(state.requests) == 3


def test_gives_up_after_attempts_and_does_not_retry_4xx(receiver) -> None:
    state, url = receiver
    state.statuses = [500] * 10
    result = alerts.send(url, {"a": 1}, secret=None, attempts=3, sleep=lambda _: None)
    assert not result.ok and result.attempts == 3 and result.error == "HTTP 500"
    state.statuses = [401]
    state.requests.clear()
    result = alerts.send(url, {"a": 1}, secret=None, attempts=3, sleep=lambda _: None)
    assert not result.ok and result.attempts == 1 and result.status == 401
    assert len(state.requests) == 1


def test_unreachable_webhook_is_reported_not_raised() -> None:
    result = alerts.send(
        "http://127.0.0.1:9/none",
        {"a": 1},
        secret=None,
        attempts=2,
        sleep=lambda _: None,
        timeout=0.5,
    )
    assert not result.ok and result.attempts == 2 and "ConnectError" in result.error
