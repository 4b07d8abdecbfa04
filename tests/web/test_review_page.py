"""The review page and the record browser in chromium against a real server: a reviewer walks the
review queue with the keyboard (relabel, keep, ambiguous) and the store holds each decision; the
browser searches, filters and opens a record's history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from looplab.api import create_app
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation, ReviewItem
from looplab.govern import access
from looplab.learn import dataset
from tests.reviewdata import LABELS, make_project, scan
from tests.web.conftest import browser_or_skip, serve_in_thread

pytestmark = pytest.mark.browser


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as _expect

    return _expect(locator)


@pytest.fixture(scope="module")
def review_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, dict]]:
    """A server over a store whose project ``news`` was scanned: its review queue is full."""
    browser_or_skip()
    home: Path = tmp_path_factory.mktemp("review")
    store = Store(f"sqlite:///{home / 'looplab.db'}")
    store.upgrade()
    tokens = {}
    with store.write() as session:
        for name, role in (("rita", "reviewer"), ("ann", "annotator")):
            _, tokens[name] = access.create_user(session, name, role, actor="test")
    make_project(store)
    scan(store, home)
    app = create_app(Settings(home=home, run_worker=False), store=store)
    with serve_in_thread(app) as url:
        yield url, store, tokens


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.locator("#token").fill(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def item(store: Store, item_id: int) -> ReviewItem:
    with store.read() as session:
        row = session.get(ReviewItem, item_id)
        assert row is not None
        session.expunge(row)
        return row


def press_and_wait(page: Any, key: str) -> int:
    """Press ``key`` on the item shown; wait until the next one is shown and nothing is pending."""
    section = page.locator(".review-page")
    shown = section.get_attribute("data-item")
    page.keyboard.press(key)
    expect(section).not_to_have_attribute("data-item", shown)
    expect(section).to_have_attribute("data-pending", "0")
    return int(shown)


def test_review_page_walks_the_queue_with_the_keyboard(page: Any, review_site: tuple) -> None:
    url, store, tokens = review_site
    sign_in(page, url, tokens["rita"])
    page.goto(url + "#/projects/news/review")
    section = page.locator(".review-page")
    expect(section).to_have_attribute("data-item", re.compile(r"^\d+$"))
    expect(section.locator("[data-fact=consensus]")).to_be_visible()
    expect(page.locator("#nav").get_by_role("link", name="Review")).to_have_attribute(
        "aria-current", "page"
    )
    first = item(store, int(section.get_attribute("data-item")))
    # The evidence: the one answer and who gave it, the consensus, the scan's suggestion.
    expect(section.locator(".answers tbody tr")).to_have_count(1)
    expect(section.locator(".answers tbody tr td").first).to_have_text("ann")
    expect(section.locator("[data-fact=suggested]")).to_have_text(first.suggested_label or "")

    assert first.suggested_label is not None
    digit = str(LABELS.index(first.suggested_label) + 1)
    assert press_and_wait(page, digit) == first.id
    kept = press_and_wait(page, "k")
    ambiguous = press_and_wait(page, "a")

    relabeled = item(store, first.id)
    assert (relabeled.status, relabeled.decided_by) == ("relabeled", "rita")
    assert item(store, kept).status == "kept"
    assert item(store, ambiguous).status == "ambiguous"
    with store.read() as session:
        note = session.get(Annotation, relabeled.decision_id)
        assert note is not None and (note.origin, note.label) == ("review", first.suggested_label)
        old = session.scalars(
            select(Annotation.status).where(Annotation.id.in_(first.annotation_ids))
        ).all()
        assert old == ["superseded"]
        data = dataset.labeled_set(session, projects.get_project(session, "news"))
    trains = dict(zip(data.record_ids, data.labels, strict=True))
    assert trains[first.record_id] == first.suggested_label
    assert item(store, ambiguous).record_id not in trains
    expect(section.locator("[data-slot=done]")).to_contain_text("Marked ambiguous")


def test_record_browser_searches_filters_and_opens_history(page: Any, review_site: tuple) -> None:
    url, store, tokens = review_site
    sign_in(page, url, tokens["rita"])
    page.goto(url + "#/projects/news/records")
    results = page.locator("tbody[data-slot=results]")
    expect(results).to_have_attribute("data-total", "150")
    expect(results.locator("tr")).to_have_count(25)

    page.get_by_label("Flagged").check()
    expect(results).to_have_attribute("data-query", "limit=25&offset=0&flagged=true")
    with store.read() as session:
        flagged = set(
            session.scalars(select(ReviewItem.record_id).where(ReviewItem.status == "open"))
        )
    expect(results).to_have_attribute("data-total", str(len(flagged)))
    shown = {int(r.get_attribute("data-record")) for r in results.locator("tr").all()}
    assert shown <= flagged and len(shown) == min(25, len(flagged))
    page.get_by_label("Flagged").uncheck()

    page.get_by_label("Annotator").fill("nobody")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("[data-slot=error]")).to_contain_text("no annotator named 'nobody'")
    page.get_by_label("Annotator").fill("")

    page.get_by_label("Search", exact=True).fill("doc17")
    page.get_by_role("button", name="Search").click()
    expect(results).to_have_attribute("data-total", "1")
    results.locator("a").click()
    record_page = page.locator(".record-page")
    expect(record_page).to_have_attribute("data-record", re.compile(r"^\d+$"))
    expect(record_page.locator(".answers tbody tr td").first).to_have_text("ann")
    expect(record_page.locator(".answers tbody tr td").nth(2)).to_have_text("human")
    expect(record_page.locator("[data-fact=training]")).to_be_visible()


def test_annotators_get_no_review_links(page: Any, review_site: tuple) -> None:
    url, _, tokens = review_site
    sign_in(page, url, tokens["ann"])
    page.goto(url + "#/projects/news/dashboard")
    expect(page.locator("#nav").get_by_role("link", name="Dashboard")).to_be_visible()
    expect(page.locator("#nav").get_by_role("link", name="Review")).to_have_count(0)
    page.goto(url + "#/projects/news/review")
    expect(page.get_by_role("alert")).to_contain_text("may not review annotations")


@pytest.fixture(scope="module")
def unscanned_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, str]]:
    """A server with its job worker over a labeled project nobody has scanned yet."""
    browser_or_skip()
    home: Path = tmp_path_factory.mktemp("unscanned")
    store = Store(f"sqlite:///{home / 'looplab.db'}")
    store.upgrade()
    with store.write() as session:
        _, token = access.create_user(session, "rita", "reviewer", actor="test")
    make_project(store)
    settings = Settings(home=home, run_worker=True, monitor_every_seconds=3600)
    with serve_in_thread(create_app(settings, store=store)) as url:
        yield url, store, token


def test_scan_now_fills_the_queue(page: Any, unscanned_site: tuple) -> None:
    url, store, token = unscanned_site
    sign_in(page, url, token)
    page.goto(url + "#/projects/news/review")
    section = page.locator(".review-page")
    expect(section).to_have_attribute("data-scan", "none")
    expect(page.get_by_text("Nothing to review.")).to_be_visible()
    page.get_by_role("button", name="Scan now").click()
    expect(section).to_have_attribute("data-scan", "done", timeout=120_000)
    expect(section).to_have_attribute("data-item", re.compile(r"^\d+$"))
    with store.read() as session:
        first = session.scalars(
            select(ReviewItem).where(ReviewItem.status == "open").order_by(ReviewItem.score)
        ).first()
    assert first is not None and section.get_attribute("data-item") == str(first.id)
    expect(section.locator("[data-slot=summary]")).to_contain_text("suspects among 150 labeled")
