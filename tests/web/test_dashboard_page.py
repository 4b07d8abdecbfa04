"""The dashboard read by a person: contrast of every chart in both colour schemes (measured in
chromium), round axis ticks, each score with its n and interval, and the two accuracy figures
explained in words."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from looplab.core import projects
from looplab.core.tables import MonitorWindow
from looplab.govern import access
from tests.web.conftest import Site
from tests.web.shots import SCHEMES, below, contrast, open_page, shot_dir
from tests.web.test_browser import CURVE, expect
from tests.web.test_monitor_page import report

pytestmark = pytest.mark.browser

CURVE_CI = [
    {**p, "accuracy_ci": ci, "macro_f1_ci": None}
    for p, ci in zip(CURVE, [[0.4, 0.8], [0.52, 0.9], [0.6, 0.95]], strict=True)
]
# The newest version is gated on macro-F1 (an imbalanced test split) against its baseline.
CURVE_CI[-1] |= {"metric": "macro_f1", "baseline": 0.47, "baseline_label": "ham"}


@pytest.fixture(scope="module")
def watched(site: Site) -> str:
    """A monitored project with three windows (the last alarmed, of v2) and a reviewer 'rev9'."""
    with site.store.write() as session:
        _, site.tokens["rev9"] = access.create_user(session, "rev9", "reviewer", actor="test")
        project = projects.create_project(
            session, "watched9", task="tabular", labels=["hi", "lo"], fields=["x0", "x1"],
            actor="test",
        )  # fmt: skip
        start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        for i, (alarm, shift, version) in enumerate([(False, 0, 1), (False, 0, 1), (True, 0.3, 2)]):
            window = MonitorWindow(
                project_id=project.id, model_version=version,
                start=start + dt.timedelta(hours=i), end=start + dt.timedelta(hours=i + 1),
                first_seq=500 * i + 1, last_seq=500 * (i + 1), n_predictions=500,
                alarm=alarm, report=report(alarm, shift),
            )  # fmt: skip
            session.add(window)
    return "watched9"


def sign_in_at(page: Any, site: Site, who: str, hash_: str) -> None:
    page.goto(site.url)
    page.locator("#token").fill(site.tokens[who])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.goto(site.url + hash_)


def with_feedback(route: Any) -> None:
    """The real /monitor answer, with feedback on each window and, in the last one, an estimate
    far below it: the case the issue saw (86-96% measured beside a 40% estimate)."""
    state = route.fetch().json()
    for k, w in enumerate(state["windows"]):
        n, accepted = 190, [173, 180, 182][k % 3]
        w["feedback"] = {
            "n": n, "accepted": accepted, "accuracy": accepted / n,
            "ci_low": accepted / n - 0.05, "ci_high": min(1, accepted / n + 0.04),
        }  # fmt: skip
    state["windows"][-1]["estimate"] = {
        "method": "cbpe", "accuracy": 0.40, "ci_low": 0.36, "ci_high": 0.44, "n": 500,
        "trusted": True, "reason": "calibrated on the reference",
    }  # fmt: skip
    state["latest"] = state["windows"][-1]
    route.fulfill(json=state)


def open_dashboard(page: Any, site: Site, project: str) -> None:
    page.route("**/api/v1/projects/*/monitor", with_feedback)
    page.route(
        "**/api/v1/projects/*/learning-curve",
        lambda r: r.fulfill(status=200, body=json.dumps(CURVE_CI), content_type="application/json"),
    )
    sign_in_at(page, site, "rev9", f"#/projects/{project}/dashboard")
    expect(page.get_by_role("heading", name="Production monitoring")).to_be_visible()
    expect(page.locator("svg.monitor-chart")).to_have_count(4)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_charts_meet_wcag_contrast_in_both_schemes(
    browser: Any,
    site: Site,
    watched: str,
    tmp_path: Path,
    scheme: str,
) -> None:
    with open_page(browser, scheme, height=900) as page:
        open_dashboard(page, site, watched)
        texts = contrast(page, "svg.chart text", "fill")
        texts += contrast(page, ".monitor-summary.alarm, .explain p, .monitor-legend li", "color")
        assert below(texts, 4.5) == [], "text below 4.5:1"
        marks = contrast(
            page,
            "svg.monitor-chart .series-line, svg.monitor-chart .point, svg.monitor-chart .floor, "
            "svg.monitor-chart .axis, svg.chart .line, svg.chart .whisker",
            "stroke",
        )
        marks += contrast(page, "svg.monitor-chart .mix-bar", "fill")
        marks += contrast(page, ".monitor-legend .swatch", "background-color")
        assert below(marks, 3.0) == [], "lines and marks below 3:1"
        worst = min(f["ratio"] for f in texts)
        print(f"{scheme}: lowest text contrast {worst:.2f}, lowest mark contrast "
              f"{min(f['ratio'] for f in marks):.2f}")  # fmt: skip
        page.screenshot(
            path=str(shot_dir(tmp_path) / f"dashboard-{scheme}.png"),
            full_page=True,
            animations="disabled",
        )


def test_y_axis_ticks_are_round(page: Any, site: Site, watched: str) -> None:
    open_dashboard(page, site, watched)
    for label in ("Drift per feature", "latency", "Accuracy over time"):
        chart = page.locator(f"svg.monitor-chart[aria-label*='{label}']")
        ticks = chart.locator("text.y-tick").all_text_contents()
        values = [float(t.replace("ms", "").replace("%", "")) for t in ticks]
        assert len(values) >= 3, ticks
        steps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
        assert len(steps) == 1, ticks  # evenly spaced
        (step,) = steps
        scale = 10 ** -int(f"{step:e}".split("e")[1])
        assert round(step * scale, 6) in {1, 2, 2.5, 5}, (label, ticks)
        assert values[0] == 0
    latency = page.locator("svg.monitor-chart[aria-label*='latency'] text.y-tick")
    expect(latency).to_have_text(["0.0 ms", "2.5 ms", "5.0 ms", "7.5 ms", "10.0 ms"])


def test_scores_come_with_their_n_and_interval(page: Any, site: Site, watched: str) -> None:
    open_dashboard(page, site, watched)
    # The gated metric leads, then what always answering the majority scores on it.
    expect(page.locator(".stat").nth(-2)).to_have_text("79%v3's macro F1 on 20 test records")
    expect(page.locator(".stat").last).to_have_text(
        "47%majority baseline: always “ham” scores this macro F1"
    )
    expect(page.locator("[data-slot=curve] line.whisker")).to_have_count(3)
    page.get_by_text("Show as a table").click()
    row = page.locator("[data-slot=curve] table tbody tr").last
    expect(row.locator("td")).to_have_text(
        ["150", "20", "macro F1 79%", "47%", "81% (60%–95%)", "–", "79%"]  # noqa: RUF001
    )


def test_measured_and_estimated_accuracy_are_explained(
    page: Any,
    site: Site,
    watched: str,
) -> None:
    open_dashboard(page, site, watched)
    text = page.locator("[data-slot=accuracy-explained]")
    expect(text).to_contain_text("Accept rate from feedback is measured.")
    expect(text).to_contain_text("People checked 190 of the 500 predictions in window")
    expect(text).to_contain_text("accepted 182: 96% (95% interval 91% to 100%)")
    expect(text).to_contain_text("Estimated accuracy (CBPE) needs no labels.")
    expect(text).to_contain_text("over all 500 predictions")
    expect(text).to_contain_text("P(y|x)")
    expect(text.locator(".disagree")).to_contain_text(
        "they disagree: 96% measured against 40% estimated. Believe the measured figure"
    )
