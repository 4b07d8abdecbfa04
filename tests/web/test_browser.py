"""Drive the real page in headless chromium against a real server, then check the store."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from looplab.core.tables import Annotation
from looplab.govern import access
from tests.web.conftest import NEWS_LABELS, SCRIPT, Site

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/looplab-label.png"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def sign_in(page: Any, site: Site, who: str) -> None:
    page.goto(site.url)
    page.locator("#token").fill(site.tokens[who])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def test_wrong_token_shows_the_servers_message(page: Any, site: Site) -> None:
    page.goto(site.url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.locator("#token").fill("ll_not-a-real-token")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_have_text("unknown or revoked token")
    expect(page.locator("#token")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("localStorage.getItem('looplab.token')") is None


def test_label_with_the_keyboard(page: Any, site: Site) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    queue_calls: list[str] = []
    page.on("request", lambda r: queue_calls.append(r.url) if "/queue/next" in r.url else None)

    sign_in(page, site, "ann")
    page.get_by_role("link", name="Label news").click()

    record = page.locator("[data-slot=record]")
    saving = page.locator("[data-slot=saving]")
    expect(record).to_have_attribute("data-record-id", str(site.ids["script"]))
    # The highest-scored record is markup: it must show as literal text and run nothing.
    expect(page.locator(".record-text")).to_have_text(SCRIPT)
    expect(page.locator("[data-slot=suggestion-text]")).to_have_text(
        "The model guesses sport. On test records where it was this sure, it was right about "
        "8 in 10 times (between 7 and 9 in 10; 40 records)."
    )
    expect(page.locator("button.label.suggested")).to_have_count(1)
    expect(page.locator("button.label.suggested .name")).to_have_text("sport")
    expect(page.locator("[data-slot=guidelines]")).to_contain_text("Pick the topic")
    expect(page.locator("[data-slot=progress]")).to_have_text("0 of 20 labeled (0%)")

    # Help opens with ? and closes with Escape.
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    def shown() -> int:
        return int(record.get_attribute("data-record-id"))

    def wait_prefetched(rid: int) -> None:
        # The next record is fetched while this one is on screen.
        for _ in range(100):
            if any(f"exclude={rid}" in url for url in queue_calls):
                return
            page.wait_for_timeout(20)
        raise AssertionError(f"no prefetch excluding {rid}: {queue_calls}")

    chosen: dict[int, str] = {}
    order: list[int] = []
    for key in ["3", "1", "4", "2", "3"]:
        rid = shown()
        wait_prefetched(rid)
        page.keyboard.press(key)
        expect(page.locator("button.label[aria-pressed=true] .name")).to_have_text(
            NEWS_LABELS[int(key) - 1]
        )
        page.keyboard.press("Enter")
        expect(record).not_to_have_attribute("data-record-id", str(rid))
        chosen[rid] = NEWS_LABELS[int(key) - 1]
        order.append(rid)
    assert dialogs == []

    # Backspace brings the fifth record back with its answer; relabel it.
    sixth = shown()
    fifth = order[-1]
    page.keyboard.press("Backspace")
    expect(record).to_have_attribute("data-record-id", str(fifth))
    expect(page.locator("[data-slot=fixing]")).to_contain_text("Your answer: sport")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    chosen[fifth] = "politics"
    expect(record).to_have_attribute("data-record-id", str(sixth))

    # S skips the sixth.
    page.keyboard.press("s")
    expect(record).not_to_have_attribute("data-record-id", str(sixth))
    expect(saving).to_have_attribute("data-pending", "0")
    expect(saving).to_have_text("All answers saved")
    expect(page.locator("[data-slot=session]")).to_contain_text("You: 5 this session")

    page.keyboard.press("1")  # a highlighted label, for the picture
    page.mouse.move(0, 0)
    page.screenshot(path=SCREENSHOT, animations="disabled")
    page.set_viewport_size({"width": 420, "height": 860})
    page.screenshot(
        path=SCREENSHOT.replace(".png", "-narrow.png"), full_page=True, animations="disabled"
    )
    assert dialogs == []

    with site.store.read() as session:
        ann = access.get_user(session, "ann")
        rows = session.scalars(select(Annotation).where(Annotation.annotator_id == ann.id)).all()
        active = {a.record_id: a for a in rows if a.status == "active"}
        assert {rid: a.label for rid, a in active.items()} == chosen
        assert all(a.seconds is not None and a.seconds > 0 for a in active.values())
        assert all(a.origin == "human" for a in active.values())
        superseded = [(a.record_id, a.label) for a in rows if a.status == "superseded"]
        assert superseded == [(fifth, "sport")]
        assert [a.record_id for a in rows if a.status == "skipped"] == [sixth]


def test_tabular_record_and_empty_queue(page: Any, site: Site) -> None:
    sign_in(page, site, "tab")
    page.goto(site.url + "#/projects/houses/label")
    table = page.locator("[data-slot=record] table.kv")
    # Project fields first, in their order; values as text, markup included.
    expect(table.locator("th")).to_have_text(["rooms", "city", "price", "notes"])
    expect(table.locator("td")).to_have_text(["3", "Leeds", "250000", "<b>garden</b>"])
    expect(page.locator("[data-slot=suggestion]")).to_be_hidden()
    page.get_by_role("button", name="cheap").click()  # a click submits at once
    expect(table.locator("td").first).to_have_text("2")
    page.get_by_role("button", name="pricey").click()
    expect(page.get_by_text("No more records to label right now.")).to_be_visible()
    expect(page.locator("[data-slot=saving]")).to_have_attribute("data-pending", "0")
    with site.store.read() as session:
        tab = access.get_user(session, "tab")
        labels = session.scalars(
            select(Annotation.label)
            .where(Annotation.annotator_id == tab.id, Annotation.status == "active")
            .order_by(Annotation.id)
        ).all()
    assert labels == ["cheap", "pricey"]


def test_a_failed_save_offers_retry_and_back_works_after_reload(page: Any, site: Site) -> None:
    failures: list[str] = []

    def flaky(route: Any) -> None:
        if len(failures) < 3:  # one try and two automatic retries
            failures.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    sign_in(page, site, "rita")
    page.route("**/api/v1/projects/feedback/annotations", flaky)
    page.goto(site.url + "#/projects/feedback/label")
    record = page.locator("[data-slot=record]")
    saving = page.locator("[data-slot=saving]")
    expect(page.locator(".record-text")).to_have_text("feedback 0")
    rid = record.get_attribute("data-record-id")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator(".record-text")).to_have_text("feedback 1")  # no waiting for the save
    toast = page.locator(".toast.error")
    expect(toast).to_contain_text(f"Record {rid} was not saved")
    expect(saving).to_have_text("1 answer not saved")
    toast.get_by_role("button", name="Retry").click()
    expect(saving).to_have_attribute("data-pending", "0")
    assert len(failures) == 3
    with site.store.read() as session:
        rita = access.get_user(session, "rita")
        saved = session.scalars(select(Annotation).where(Annotation.annotator_id == rita.id)).all()
        assert [(a.record_id, a.label, a.status) for a in saved] == [(int(rid), "bug", "active")]

    # After a reload the page has no history of its own; Backspace asks the server.
    page.reload()
    expect(page.locator(".record-text")).to_have_text("feedback 1")
    page.keyboard.press("Backspace")
    expect(record).to_have_attribute("data-record-id", rid)
    expect(page.locator("[data-slot=fixing]")).to_contain_text("Your answer: bug")
    page.keyboard.press("s")  # keep it
    expect(page.locator(".record-text")).to_have_text("feedback 1")


CURVE = [
    {
        "version": f"v{i}",
        "n_labels": 50 * i,
        "accuracy": acc,
        "macro_f1": f1,
        "n_test": 20,
        "created_at": f"2024-05-0{i}T10:00:00Z",
    }
    for i, acc, f1 in [(1, 0.61, 0.55), (2, 0.74, 0.70), (3, 0.81, 0.79)]
]


def test_dashboard(page: Any, site: Site) -> None:
    sign_in(page, site, "bob")
    page.get_by_role("link", name="Dashboard of reviews").click()
    expect(page.get_by_role("heading", name="reviews: dashboard")).to_be_visible()
    stats = page.locator(".stat")
    expect(stats.nth(0)).to_have_text("6records")
    expect(stats.nth(1)).to_have_text("5 (83%)labeled")
    labels = page.locator("[data-slot=per-label] tbody tr")
    expect(labels).to_have_text(["neg1", "pos4"])
    expect(page.locator("[data-slot=per-annotator] tbody tr")).to_have_text(["eve3", "bob2"])
    expect(page.locator("[data-slot=curve]")).to_contain_text("No model yet.")

    # Until the endpoint exists a 404 means "no model yet"; with points it draws the chart.
    route = "**/api/v1/projects/reviews/learning-curve"
    missing = {"error": {"code": "not_found", "message": "Not Found", "details": {}}}
    page.route(route, lambda r: r.fulfill(status=404, body=json.dumps(missing)))
    page.reload()
    expect(page.locator("[data-slot=curve]")).to_contain_text("No model yet.")
    page.unroute(route)
    page.route(
        route,
        lambda r: r.fulfill(status=200, body=json.dumps(CURVE), content_type="application/json"),
    )
    page.reload()
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    expect(chart.locator("circle.line-accuracy")).to_have_count(3)
    expect(chart.locator("circle.line-f1")).to_have_count(3)
    expect(chart.locator("path.line")).to_have_count(2)
    expect(chart.locator(".axis-label")).to_have_text(
        ["Labels used for training", "Score on the test set"]
    )
    expect(chart.locator("circle.line-accuracy title").last).to_have_text(
        "v3: Accuracy 81% on 20 test records; trained on 150 labels"
    )
    page.screenshot(path="/tmp/looplab-dashboard.png", full_page=True)


def test_a_queue_error_shows_the_servers_message(page: Any, site: Site) -> None:
    busy = {"error": {"code": "unavailable", "message": "the store is busy", "details": {}}}
    route = "**/api/v1/projects/reviews/queue/next*"
    page.route(route, lambda r: r.fulfill(status=503, body=json.dumps(busy)))
    sign_in(page, site, "bob")
    page.goto(site.url + "#/projects/reviews/label")
    expect(page.get_by_role("alert")).to_have_text("Could not load the next record.")
    expect(page.locator("[data-slot=record]")).to_contain_text("the store is busy")
    page.unroute(route)
    page.keyboard.press("Enter")  # focus is on "Try again"
    expect(page.locator(".record-text")).to_have_text("review 5")
