"""Browser test fixtures: a real looplab server on a free port, and headless Debian chromium.

The server is uvicorn in a background thread serving ``create_app`` over a SQLite file; the tests
read the same store to check what the page did. Chromium is the system one (``/usr/bin/chromium``):
playwright's own browser downloads are not needed.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from looplab.api import create_app
from looplab.ask import queue
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import ModelVersion, Record
from looplab.govern import access

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCRIPT = "<script>alert(1)</script>"
NEWS_LABELS = ["business", "politics", "sport", "tech"]
HEADLINES = [
    "Shares in the chip maker rose 8% after it raised its forecast for the year.",
    "The prime minister faces a vote on the budget next week.",
    "A late goal sent the home side through to the cup final.",
    "The new phone's battery lasts two days, the company says.",
    "Oil prices fell for a third day as supply worries eased.",
    "Opposition leaders call for an inquiry into party funding.",
    "The champion retained her title in straight sets on Sunday.",
    "Researchers unveil a chip that runs language models on a watch.",
    "The central bank held interest rates at 4.5% on Thursday.",
    "Voters in the north go to the polls in a tight by-election.",
    "The striker signed a four-year contract worth a record fee.",
    "A software update fixes the bug that drained laptop batteries.",
    "Retail sales grew faster than expected in the spring.",
    "Ministers agree a new deal on fishing rights.",
    "The marathon was won in a course record time.",
    "Streaming service adds a cheaper plan with adverts.",
    "The airline cut 2,000 jobs as it merged two brands.",
    "The senate passed the bill by 52 votes to 48.",
    "The coach was sacked after five defeats in a row.",
]
GUIDELINES = (
    "Pick the topic the article is mainly about.\n"
    "Markets, companies and jobs are business; elections and laws are politics.\n"
    "If two topics fit, choose the one in the headline."
)


RELIABILITY = {
    "edges": [i / 10 for i in range(11)],
    "confidence": [None] * 8 + [0.85, None],
    "accuracy": [None] * 8 + [0.85, None],
    "counts": [0] * 8 + [40, 0],
}
SUGGESTING_VERSION: dict[str, Any] = {
    "artifact": "unused.skops",
    "sha256": "0" * 64,
    "metrics": {"n": 40, "accuracy": 0.8, "accuracy_ci": [0.66, 0.9], "reliability": RELIABILITY},
    "n_test": 40,
    "created_by": "test",
}


def browser_or_skip() -> str:
    """The chromium executable; skip (or fail under CI) when it or playwright is missing."""
    reason = None
    chromium = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    chromium = chromium or shutil.which("chromium")
    if chromium is None:
        reason = "Debian chromium not found at /usr/bin/chromium or on PATH (apt install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run the browser tests")
        pytest.skip(reason)
    assert chromium is not None
    return chromium


@dataclass
class Site:
    """A running server, its store and the seeded data."""

    url: str
    store: Store
    tokens: dict[str, str]
    ids: dict[str, Any] = field(default_factory=dict)


def _seed(store: Store) -> tuple[dict[str, str], dict[str, Any]]:
    tokens: dict[str, str] = {}
    ids: dict[str, Any] = {}
    with store.write() as session:
        for name in ("ann", "tab", "eve", "bob", "rita"):
            _, tokens[name] = access.create_user(session, name, "annotator", actor="test")
        news = projects.create_project(
            session, "news", task="text", labels=NEWS_LABELS, guidelines=GUIDELINES, actor="test"
        )
        texts = [SCRIPT, *HEADLINES]
        records = []
        for i, text in enumerate(texts):
            record = Record(
                project_id=news.id,
                content_hash=i.to_bytes(16, "big"),
                payload={"text": text},
                meta={},
                score=float(100 - i),
                pred_label=NEWS_LABELS[(i + 2) % 4],
                pred_confidence=0.83 if i == 0 else 0.5 + (i % 5) / 10,
                pred_model=1,
            )
            session.add(record)
            records.append(record)
        session.flush()
        ids["script"] = records[0].id
        # The version that guessed them passed the suggestion floor (40 test records, 80% right,
        # 85% of the 40 in the 0.8-0.9 confidence bin; see looplab.ask.suggestions).
        session.add(ModelVersion(**SUGGESTING_VERSION, project_id=news.id, version=1))

        houses = projects.create_project(
            session,
            "houses",
            task="tabular",
            labels=["cheap", "fair", "pricey"],
            fields=["rooms", "city", "price"],
            actor="test",
        )
        for i, row in enumerate(
            [
                {"price": 250_000, "city": "Leeds", "rooms": 3, "notes": "<b>garden</b>"},
                {"price": 900_000, "city": "London", "rooms": 2, "notes": None},
            ]
        ):
            session.add(
                Record(
                    project_id=houses.id,
                    content_hash=(100 + i).to_bytes(16, "big"),
                    payload=row,
                    meta={},
                    score=float(10 - i),
                )
            )

        feedback = projects.create_project(
            session, "feedback", task="text", labels=["bug", "praise"], actor="test"
        )
        for i in range(3):
            session.add(
                Record(
                    project_id=feedback.id,
                    content_hash=(300 + i).to_bytes(16, "big"),
                    payload={"text": f"feedback {i}"},
                    meta={},
                    score=float(-i),
                )
            )

        reviews = projects.create_project(
            session, "reviews", task="text", labels=["neg", "pos"], actor="test"
        )
        review_records = []
        for i in range(6):
            record = Record(
                project_id=reviews.id,
                content_hash=(200 + i).to_bytes(16, "big"),
                payload={"text": f"review {i}"},
                meta={},
                score=0.0,
            )
            session.add(record)
            review_records.append(record)
        session.flush()
        eve = access.get_user(session, "eve")
        bob = access.get_user(session, "bob")
        for i, record in enumerate(review_records[:5]):
            who = eve if i < 3 else bob
            queue.annotate(session, reviews, who, record.id, "pos" if i < 4 else "neg")
    return tokens, ids


@contextmanager
def serve_in_thread(app: Any, *, stop_seconds: float = 30) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the looplab server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=stop_seconds)
        sock.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    browser_or_skip()
    home: Path = tmp_path_factory.mktemp("web")
    store = Store(f"sqlite:///{home / 'looplab.db'}")
    store.upgrade()
    tokens, ids = _seed(store)
    app = create_app(Settings(home=home, run_worker=False), store=store)
    with serve_in_thread(app) as url:
        yield Site(url=url, store=store, tokens=tokens, ids=ids)


@pytest.fixture(scope="session")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = browser_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.set_default_timeout(5_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
