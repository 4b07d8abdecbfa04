"""The dashboard's annotators panel in headless chromium: a seeded flipper is flagged, the heatmap
outlines the flipped cell, quarantine from the panel moves her answers in the store and is
audited; annotators do not see the panel; thin data says so; contrast in both schemes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, update

from looplab.ask import queue
from looplab.core import projects
from looplab.core.tables import Annotation, AuditEvent, Record, User
from looplab.govern import access
from tests import textdata
from tests.web.conftest import Site
from tests.web.shots import SCHEMES, below, contrast, open_page, shot_dir
from tests.web.test_browser import expect, sign_in

pytestmark = pytest.mark.browser

MONDAY = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def crowd(site: Site) -> str:
    """Project "crowd9": 60 articles over two weeks, each answered by ann9, bob9 (right 95% of
    the time) and mallory9, who files every sport article under business; reviewer "rev8"."""
    rng = np.random.default_rng(1)
    with site.store.write() as session:
        _, site.tokens["rev8"] = access.create_user(session, "rev8", "reviewer", actor="test")
        project = projects.create_project(
            session, "crowd9", task="text", labels=textdata.LABELS, actor="test"
        )
        people = [
            access.create_user(session, name, "annotator", actor="test")[0]
            for name in ("ann9", "bob9", "mallory9")
        ]
        for i, (text, true, _) in enumerate(textdata.rows(60, seed=3)):
            record = Record(
                project_id=project.id,
                content_hash=(9000 + i).to_bytes(16, "big"),
                payload={"text": text},
            )
            session.add(record)
            session.flush()
            for person in people:
                if person.name == "mallory9":
                    label = "business" if true == "sport" else true
                else:
                    label = true if rng.random() < 0.95 else str(rng.choice(textdata.LABELS))
                queue.annotate(session, project, person, record.id, label, seconds=5.0)
            when = MONDAY + dt.timedelta(days=7 * (i // 30), minutes=i)
            session.execute(
                update(Annotation).where(Annotation.record_id == record.id).values(created_at=when)
            )
    return "crowd9"


def open_panel(page: Any, site: Site, who: str, project: str) -> Any:
    sign_in(page, site, who)
    page.goto(f"{site.url}#/projects/{project}/dashboard")
    expect(page.locator("[data-slot=trust]")).to_be_visible()
    return page.locator("[data-slot=trust]")


def test_flipper_is_flagged_outlined_and_quarantined_from_the_panel(
    page: Any, site: Site, crowd: str
) -> None:
    panel = open_panel(page, site, "rev8", crowd)
    expect(panel.locator("[data-slot=trust-summary]")).to_contain_text("flagged: mallory9")
    row = panel.locator("tr[data-user=mallory9]")
    expect(row.locator(".flags")).to_contain_text("flipped class")
    expect(row.locator(".flags")).to_contain_text("answers 'business' for 9")
    expect(row.locator(".flags")).to_contain_text("items of 'sport'")
    expect(panel.locator("tr[data-user=ann9] .evidence")).to_have_text("no flag")
    # Agreement over time: two weekly batches, each with its interval (the band and whiskers).
    chart = panel.locator("svg.agreement-chart")
    expect(chart.locator("circle.point")).to_have_count(2)
    expect(chart.locator("path.band")).to_have_count(1)
    expect(panel.locator("[data-slot=agreement-overall]")).to_contain_text("on 60 records")
    # The heatmap opens on the flagged person and outlines the flip (sport answered business).
    expect(panel.locator("[data-slot=heatmap-person]")).to_have_value("mallory9")
    flipped = panel.locator(".heatmap td.flipped")
    expect(flipped).to_have_count(1)
    expect(flipped).to_have_attribute("data-truth", "sport")
    expect(flipped).to_have_attribute("data-answered", "business")
    expect(panel.locator(".heatmap td[data-truth=sport][data-answered=sport]")).to_have_text("0")
    # Another person's table has no outlined cell.
    panel.locator("[data-slot=heatmap-person]").select_option("ann9")
    expect(panel.locator(".heatmap[data-user=ann9]")).to_be_visible()
    expect(panel.locator(".heatmap td.flipped")).to_have_count(0)

    # Quarantine from the panel: a reason is asked for, the row changes at once, the server
    # moves her answers and audits the decision.
    row.get_by_role("button", name="Quarantine mallory9").click()
    dialog = page.locator("dialog.reason-dialog")
    dialog.get_by_role("button", name="Quarantine").click()
    expect(dialog.locator("[role=alert]")).to_have_text("Say why: the reason is audited.")
    dialog.locator("textarea").fill("files every sport article under business")
    dialog.get_by_role("button", name="Quarantine").click()
    expect(row).to_have_attribute("data-status", "quarantined")
    expect(panel).to_have_attribute("data-pending", "0")
    expect(row.locator("[data-slot=status]")).to_have_text("quarantined")
    expect(row.get_by_role("button", name="Confirm mallory9")).to_be_visible()
    with site.store.read() as session:
        mallory = session.scalar(select(User).where(User.name == "mallory9"))
        assert mallory is not None
        statuses = session.scalars(
            select(Annotation.status).where(Annotation.annotator_id == mallory.id)
        ).all()
        events = session.execute(
            select(AuditEvent.actor, AuditEvent.details).where(
                AuditEvent.action == "annotator.quarantine"
            )
        ).all()
    assert len(statuses) == 60 and set(statuses) == {"quarantined"}
    assert [(actor, d["user"], d["reason"]) for actor, d in events] == [
        ("rev8", "mallory9", "files every sport article under business")
    ]


def test_annotators_do_not_see_the_panel(page: Any, site: Site, crowd: str) -> None:
    sign_in(page, site, "ann")
    page.goto(f"{site.url}#/projects/{crowd}/dashboard")
    expect(page.locator("section[data-loaded=true]")).to_be_attached()
    expect(page.locator("[data-slot=trust]")).to_have_count(0)


def test_thin_data_says_so(page: Any, site: Site) -> None:
    """ "reviews": eve and bob answered different records (no overlap) and fewer than 20 each."""
    if "rev8" not in site.tokens:
        with site.store.write() as session:
            _, site.tokens["rev8"] = access.create_user(session, "rev8", "reviewer", actor="t")
    panel = open_panel(page, site, "rev8", "reviews")
    expect(panel.locator("[data-slot=agreement-empty]")).to_contain_text(
        "Not measured yet: no record has answers from two people yet"
    )
    expect(panel.locator("tr[data-user=eve] .evidence")).to_have_text(
        "not judged: 3 answers, fewer than 20"
    )
    expect(panel.locator("[data-slot=heatmap-empty]")).to_contain_text("nothing to compare with")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_panel_meets_wcag_contrast_in_both_schemes(
    browser: Any, site: Site, crowd: str, tmp_path: Path, scheme: str
) -> None:
    with open_page(browser, scheme, height=1400) as page:
        panel = open_panel(page, site, "rev8", crowd)
        expect(panel.locator(".heatmap")).to_be_visible()
        texts = contrast(page, "#trust svg.chart text", "fill")
        texts += contrast(
            page, "#trust .heatmap .cell-text, #trust .status, #trust .flags li", "color"
        )
        assert below(texts, 4.5) == [], "text below 4.5:1"
        marks = contrast(
            page,
            "#trust svg.monitor-chart .series-line, #trust svg.monitor-chart .point, "
            "#trust svg.monitor-chart .whisker, #trust svg.monitor-chart .floor",
            "stroke",
        )
        marks += contrast(page, "#trust .monitor-legend .swatch", "background-color")
        assert below(marks, 3.0) == [], "lines and marks below 3:1"
        page.screenshot(
            path=str(shot_dir(tmp_path) / f"trust-panel-{scheme}.png"),
            full_page=True,
            animations="disabled",
        )


def test_a_refused_decision_puts_the_row_back(page: Any, site: Site, crowd: str) -> None:
    """The row changes at once; when the server refuses, it goes back and the message shows."""
    panel = open_panel(page, site, "rev8", crowd)
    page.route(
        "**/api/v1/projects/*/annotators/*/quarantine",
        lambda route: route.fulfill(
            status=409,
            json={"error": {"code": "conflict", "message": "'bob9' is busy", "details": {}}},
        ),
    )
    row = panel.locator("tr[data-user=bob9]")
    before = row.get_attribute("data-status")
    row.get_by_role("button", name="Quarantine bob9").click()
    page.locator("dialog.reason-dialog textarea").fill("testing a refusal")
    page.locator("dialog.reason-dialog").get_by_role("button", name="Quarantine").click()
    # The toast comes with the answer, and the row is put back in the same step.
    expect(page.locator(".toast.error")).to_contain_text("Quarantine bob9 failed: 'bob9' is busy")
    expect(panel).to_have_attribute("data-pending", "0")
    expect(row).to_have_attribute("data-status", before or "ok")
    expect(row.get_by_role("button", name="Quarantine bob9")).to_be_enabled()
