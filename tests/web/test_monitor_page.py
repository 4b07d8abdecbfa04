"""The dashboard's monitoring section in headless chromium: charts, alarm bands, triggers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from looplab import configure
from looplab.core import projects
from looplab.core.tables import Feedback, MonitorWindow, Prediction, TriggerDecision
from looplab.govern import access
from tests.web.conftest import Site
from tests.web.test_browser import expect, sign_in

pytestmark = pytest.mark.browser


def report(alarm: bool, shift: float) -> dict[str, Any]:
    def feature(name: str, effect: float, drift: bool) -> dict[str, Any]:
        return {
            "name": name,
            "kind": "numeric",
            "test": "ks+welch",
            "p_value": 1e-6 if drift else 0.4,
            "p_holm": 1e-5 if drift else 1.0,
            "effect_size": effect,
            "effect_name": "wasserstein_normed",
            "min_effect": 0.05,
            "drift": drift,
            "blamed": drift,
        }

    return {
        "n": 500,
        "latency": {"p50_ms": 2.0, "p95_ms": 5.0, "p99_ms": 9.0},
        "mix": {"hi": 0.5 + shift / 4, "lo": 0.5 - shift / 4},
        "estimate": {"method": "cbpe", "accuracy": 0.86, "ci_low": 0.83, "ci_high": 0.89,
                     "n": 500, "trusted": True, "reason": "calibrated on the reference"},
        "drift": {
            "alarm": alarm,
            "blamed": ["x0"] if alarm else [],
            "reasons": [],
            "features": [feature("x0", 0.02 + shift, alarm), feature("x1", 0.03, False)],
            "multivariate": None,
            "prediction": None,
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def watched(site: Site) -> str:
    with site.store.write() as session:
        _, site.tokens["rev"] = access.create_user(session, "rev", "reviewer", actor="test")
        project = projects.create_project(
            session, "watched", task="tabular", labels=["hi", "lo"], fields=["x0", "x1"],
            actor="test",
        )  # fmt: skip
        configure.update_settings(
            session,
            project,
            {
                "triggers": [
                    {"name": "persistent-drift", "when": "drift", "windows": 1, "level": "inputs"}
                ]
            },
            actor="test",
        )
        start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        for i, (alarm, shift, version) in enumerate([(False, 0, 1), (False, 0, 1), (True, 0.3, 2)]):
            window = MonitorWindow(
                project_id=project.id,
                model_version=version,
                start=start + dt.timedelta(hours=i),
                end=start + dt.timedelta(hours=i + 1),
                first_seq=500 * i + 1,
                last_seq=500 * (i + 1),
                n_predictions=500,
                alarm=alarm,
                report=report(alarm, shift),
            )
            session.add(window)
            session.flush()
            session.add(
                TriggerDecision(
                    project_id=project.id,
                    trigger="persistent-drift",
                    window_id=window.id,
                    fired=alarm,
                    reason="drift alarm in each of the last 1 windows" if alarm else "0 of 1",
                    actions={"alert": {"job": 1}} if alarm else {},
                )
            )
        # 100 people's verdicts on v2's window: 60 right, far below the 86% estimated.
        user, _ = access.create_user(session, "fb", "annotator", actor="test")
        for j in range(100):
            at = start + dt.timedelta(hours=2, seconds=j)
            session.add(
                Prediction(
                    id=f"p{j:031d}", project_id=project.id, model_version=2, seq=1001 + j,
                    input={"x0": 0.0, "x1": 0.0}, label="hi", confidence=0.86,
                    proba={"hi": 0.86, "lo": 0.14}, latency_ms=1.0, created_at=at,
                )
            )  # fmt: skip
            session.flush()
            session.add(
                Feedback(
                    project_id=project.id, prediction_id=f"p{j:031d}", model_version=2,
                    prediction_at=at, prediction_seq=1001 + j, user_id=user.id,
                    accepted=j < 60, label="hi" if j < 60 else "lo",
                )
            )  # fmt: skip
    return "watched"


def test_dashboard_shows_monitoring_charts(page: Any, site: Site, watched: str) -> None:
    sign_in(page, site, "rev")
    page.goto(f"{site.url}#/projects/{watched}/dashboard")
    expect(page.get_by_role("heading", name="Production monitoring")).to_be_visible()
    summary = page.locator(".monitor-summary")
    expect(summary).to_contain_text("3 windows, 0 alarms, 1 warnings")
    expect(summary).to_contain_text("latest window (v2) level inputs; blamed: x0")
    # The labels contradict the estimate: the summary and the accuracy panel lead with them.
    expect(summary).to_contain_text(
        "accuracy 60% on feedback labels (estimate 86% contradicted)"
    )
    contradicted = page.locator("[data-slot=contradicted]")
    expect(contradicted).to_contain_text("60% on 100 volunteered labels")
    expect(contradicted).to_contain_text("labels contradict the estimate")
    charts = page.locator("svg.monitor-chart")
    expect(charts).to_have_count(4)
    for label in ("Drift per feature", "Accuracy over time", "Prediction mix", "latency"):
        expect(page.locator(f"svg.monitor-chart[aria-label*='{label}']")).to_have_count(1)
    # The drifted window is shaded as a warning in every chart (accuracy was not judged at risk:
    # the window has no reference to compare with), and x0's last point is filled (drift).
    expect(page.locator("rect.warning-band")).to_have_count(4)
    expect(page.locator("rect.alarm-band")).to_have_count(0)
    drift = page.locator("svg[aria-label^='Drift per feature']")
    expect(drift.locator("circle.point")).to_have_count(6)
    expect(drift.locator("circle.point title").nth(2)).to_contain_text("x0, window")
    expect(drift.locator("circle.point title").nth(2)).to_contain_text("(v2)")
    expect(drift.locator("circle.point title").nth(2)).to_contain_text("drift")
    # Each chart marks where v2's windows begin: their figures are v2's, not a blend.
    expect(page.locator("line.version-change")).to_have_count(4)
    # ...and each feature's line breaks there: v1's points and v2's are not one series.
    paths = drift.locator("path").evaluate_all("ps => ps.map((p) => p.getAttribute('d'))")
    assert [d.count("M") for d in paths] == [2, 2]
    expect(page.locator("svg[aria-label^='Prediction mix'] rect.mix-bar")).to_have_count(6)
    row = page.locator("table.triggers tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("persistent-drift")
    expect(row).to_contain_text("FIRED: drift alarm in each of the last 1 windows")
    page.screenshot(path="/tmp/looplab-monitor.png", full_page=True)


def test_annotators_see_no_monitoring(page: Any, site: Site, watched: str) -> None:
    sign_in(page, site, "ann")
    page.goto(f"{site.url}#/projects/{watched}/dashboard")
    expect(page.get_by_role("heading", name="Labels")).to_be_visible()
    expect(page.get_by_role("heading", name="Annotators")).to_be_visible()
    page.wait_for_timeout(300)
    expect(page.get_by_role("heading", name="Production monitoring")).to_have_count(0)
