"""The ``agreement_below`` trigger rule: pure decisions over alpha per batch, bad rules refused
with the entry named, and, on a store, it fires when a careless annotator joins and not on a
steady crowd; run by the reliability job, stored and audited, an alert queued, once per batch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from looplab import worker
from looplab.ask import queue
from looplab.core import jobs, projects
from looplab.core.errors import Invalid
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation, AuditEvent, Job, Record, TriggerDecision
from looplab.govern import access
from looplab.watch import trust_triggers
from looplab.watch.triggers import decide, parse_rules
from tests import textdata

RULE = {"name": "crowd", "when": "agreement_below", "alpha": 0.6, "drop": 0.15}


def batch(name: str, alpha: float | None, n: int = 40) -> dict:
    low, high = (None, None) if alpha is None else (alpha - 0.1, alpha + 0.1)
    return {"batch": name, "alpha": alpha, "low": low, "high": high, "n_records": n}


def test_fires_on_a_fall_and_on_a_crossing_once_per_batch() -> None:
    [rule] = parse_rules([RULE])
    assert (rule.params["min_items"], rule.params["by"], rule.actions) == (30, "week", ("alert",))
    steady = [batch("2026-11-02", 0.82), batch("2026-11-09", 0.78), batch("2026-11-16", 0.8)]
    assert decide(rule, [], [], 0, batches=steady) == (
        False,
        "alpha 0.800 (95% 0.70 to 0.90) on 40 records in the week of 2026-11-16; "
        "threshold 0.6 and drop 0.15",
    )
    careless = [*steady[:2], batch("2026-11-16", 0.41)]
    fired, reason = decide(rule, [], [], 0, batches=careless)
    assert fired and reason == (
        "alpha 0.410 (95% 0.31 to 0.51) on 40 records in the week of 2026-11-16: "
        "down 0.370 from 0.780 in 2026-11-09 (more than 0.15)"
    )
    assert decide(rule, [], [], 0, batches=careless, last_fired_batch="2026-11-16") == (
        False,
        "alpha 0.410 (95% 0.31 to 0.51) on 40 records in the week of 2026-11-16: "
        "already fired on this week",
    )
    # A week on too few records is skipped, not judged: the last full week decides.
    thin = [*careless, batch("2026-11-23", 0.1, n=12)]
    assert decide(rule, [], [], 0, batches=thin, last_fired_batch="2026-11-16")[0] is False
    # Still below the next week, without a further fall: no second alert.
    below = [*careless, batch("2026-11-23", 0.45)]
    assert decide(rule, [], [], 0, batches=below, last_fired_batch="2026-11-16") == (
        False,
        "alpha 0.450 (95% 0.35 to 0.55) on 40 records in the week of 2026-11-23 "
        "still below 0.6 (as in 2026-11-16)",
    )
    # A slow slide under the threshold fires on the crossing (no single fall beyond 0.15).
    [level] = parse_rules([{"when": "agreement_below", "alpha": 0.6}])
    slide = [batch("a", 0.7), batch("b", 0.64), batch("c", 0.55)]
    assert decide(level, [], [], 0, batches=slide) == (
        True,
        "alpha 0.550 (95% 0.45 to 0.65) on 40 records in the week of c < 0.6",
    )
    # A fall alone, with no level: from 0.95 to 0.75 is still good agreement but a fall of 0.2.
    [fall] = parse_rules([{"when": "agreement_below", "drop": 0.15, "min_items": 20}])
    assert decide(fall, [], [], 0, batches=[batch("a", 0.95), batch("b", 0.75)])[0] is True
    assert decide(fall, [], [], 0, batches=[batch("a", 0.95, n=10)]) == (
        False,
        "no week has 20 records answered by two or more people yet (most: 10)",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "triggers[0].alpha or triggers[0].drop is needed"),
        ({"alpha": 1.5}, "triggers[0].alpha must be above -1 and at most 1"),
        ({"alpha": "high"}, "triggers[0].alpha must be a number"),
        ({"alpha": True}, "triggers[0].alpha must be a number"),
        ({"drop": 0}, "triggers[0].drop must be above 0"),
        ({"alpha": 0.6, "min_items": 1}, "triggers[0].min_items must be a int >= 2"),
        ({"alpha": 0.6, "min_items": 30.0}, "triggers[0].min_items must be a int >= 2"),
        ({"alpha": 0.6, "by": "year"}, "triggers[0].by must be one of day, week, month"),
        ({"alpha": 0.6, "threshold": 0.6}, "triggers[0].threshold is not a parameter"),
        ({"alpha": 0.6, "actions": ["retrain"]}, "agreement_below can only alert, not retrain"),
        ({"alpha": 0.6, "actions": ["label", "alert"]}, "can only alert, not label"),
    ],
)
def test_bad_rules_name_the_entry(raw: dict, message: str) -> None:
    with pytest.raises(Invalid, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        parse_rules([{"when": "agreement_below", **raw}])
    assert caught.value.details["field"].startswith("triggers[0]")


MONDAY = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


def crowd(store: Store, *, careless: bool, weeks: int = 3, per_week: int = 40) -> None:
    """Project "news": ``per_week`` articles a week, each answered by ann, bob and cem (right
    95%, 92% and 90% of the time); with ``careless``, carl joins in the last week and answers
    every article of it at random."""
    rng = np.random.default_rng(7)
    with store.write() as session:
        project = textdata.add_text_project(session, n=0)
        projects.write_settings(
            session,
            project,
            {"triggers": [RULE], "reliability_every": 0, "retrain_every": 10**6},
            actor="t",
        )
        people = {
            name: access.create_user(session, name, "annotator", actor="t")[0]
            for name in ("ann", "bob", "cem", "carl")
        }
        accuracy = {"ann": 0.95, "bob": 0.92, "cem": 0.9}
        for i, (text, true, _) in enumerate(textdata.rows(weeks * per_week, seed=2)):
            record = Record(
                project_id=project.id, content_hash=i.to_bytes(16, "big"), payload={"text": text}
            )
            session.add(record)
            session.flush()
            week = i // per_week
            for name, acc in accuracy.items():
                right = rng.random() < acc
                label = true if right else str(rng.choice(textdata.LABELS))
                queue.annotate(session, project, people[name], record.id, label, seconds=5.0)
            if careless and week == weeks - 1:
                label = str(rng.choice(textdata.LABELS))
                queue.annotate(session, project, people["carl"], record.id, label, seconds=5.0)
            when = MONDAY + dt.timedelta(days=7 * week, minutes=i)
            session.execute(
                update(Annotation).where(Annotation.record_id == record.id).values(created_at=when)
            )


def decisions(store: Store) -> list[tuple[bool, str, dict, int | None]]:
    with store.read() as session:
        rows = session.scalars(select(TriggerDecision).order_by(TriggerDecision.id)).all()
        return [(d.fired, d.reason, d.actions, d.window_id) for d in rows]


def test_a_careless_annotator_joining_fires_the_rule_through_the_reliability_job(
    store: Store, tmp_path: Path
) -> None:
    crowd(store, careless=True)
    with store.write() as session:
        jobs.enqueue(session, "reliability", project_id=projects.get_project(session, "news").id)
    worker.drain(store, Settings(home=tmp_path))
    [(fired, reason, actions, window)] = decisions(store)
    assert fired and window is None
    assert "in the week of 2026-11-16: down" in reason
    assert actions["batch"] == "2026-11-16"
    with store.read() as session:
        alert = session.get(Job, actions["alert"]["job"])
        assert alert is not None and alert.kind == "alert"
        assert alert.params["trigger"] == "crowd" and alert.params["batch"] == "2026-11-16"
        assert alert.params["agreement"]["alpha"] < 0.6
        audited = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "trigger.decide")
        ).all()
    assert [(d["trigger"], d["fired"]) for d in audited] == [("crowd", True)]
    # The next check judges the same week: no second alert.
    with store.write() as session:
        again = trust_triggers.check(session, projects.get_project(session, "news"), actor="rev")
    assert again["triggers"] == []
    assert decisions(store)[-1][1].endswith("already fired on this week")


def test_a_steady_crowd_does_not_fire(store: Store) -> None:
    crowd(store, careless=False)
    with store.write() as session:
        result = trust_triggers.check(session, projects.get_project(session, "news"), actor="rev")
    assert result["triggers"] == []
    [(fired, reason, actions, _)] = decisions(store)
    assert not fired and actions == {"batch": "2026-11-16"}
    alpha = float(reason.split()[1])
    assert alpha > 0.7, reason


def test_the_cli_runs_the_rule_with_the_check_and_shows_its_decision(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`looplab annotators --run` says which agreement rules fired; `looplab triggers` shows the
    decision without a window."""
    from typer.testing import CliRunner

    from looplab.cli.app import app

    crowd(store, careless=True)
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLAB_DATABASE_URL", store.url)
    runner = CliRunner()
    ran = runner.invoke(app, ["annotators", "news", "--run"])
    assert ran.exit_code == 0, ran.output
    assert "agreement triggers fired: ['crowd']" in ran.stderr.replace("\n", " ")
    shown = runner.invoke(app, ["triggers", "news"], terminal_width=400)
    assert shown.exit_code == 0
    assert "FIRED: alpha 0.413" in shown.stdout and "window #" not in shown.stdout
    bad = runner.invoke(app, ["config", "news", 'triggers=[{"when": "agreement_below"}]'])
    assert bad.exit_code == 2 and "triggers[0].alpha or triggers[0].drop is needed" in bad.stderr
