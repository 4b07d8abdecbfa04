"""Gate, promotion, rollback, lineage and artifact integrity on a real store (SQLite and PG)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from looplab import configure
from looplab.ask import scoring
from looplab.core import projects
from looplab.core.errors import Conflict, Invalid, NotFound
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import AuditEvent, Job
from looplab.learn import dataset, neardup, promotion, registry
from looplab.learn import train as training
from tests.textdata import add_labeled, add_text_project, train

DUMMY = "sklearn.dummy.DummyClassifier"  # predicts the prior: a much worse model


@pytest.fixture
def news(store: Store, tmp_path: Path) -> Store:
    with store.write() as session:
        add_text_project(session)
    train(store, tmp_path)
    return store


def test_promote_refuses_a_worse_model_and_force_needs_a_reason(news: Store, tmp_path) -> None:
    with pytest.raises(Conflict, match="no production model to roll back"):
        promotion.rollback_project(news, "news", actor="bob")
    first = promotion.promote_version(news, "news", "v1", actor="alice")
    assert first["promoted"] == "v1" and first["previous"] is None and not first["forced"]
    train(news, tmp_path, estimator=DUMMY)

    with pytest.raises(promotion.GateFailed) as refused:
        promotion.promote_version(news, "news", "v2", actor="alice")
    assert refused.value.code == "gate_failed"
    reasons = refused.value.details["reasons"]
    assert any(r.startswith("accuracy") and "worse by" in r for r in reasons)
    with pytest.raises(Invalid, match="forced promotion needs a reason"):
        promotion.promote_version(news, "news", "v2", actor="alice", force=True)

    forced = promotion.promote_version(
        news, "news", "v2", actor="alice", force=True, reason="incident 42: need the new labels"
    )
    assert forced["forced"] is True and forced["previous"] == "v1"
    with news.read() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "model.production")
        ).all()[-1]
        assert event.actor == "alice"
        assert event.details["forced"] is True
        assert event.details["reason"] == "incident 42: need the new labels"
        assert event.details["gate"]["passed"] is False
        assert event.details["gate"]["reasons"] == reasons
        project = projects.get_project(session, "news")
        assert [m.stage for m in registry.list_versions(session, project)] == [
            "archived",
            "production",
        ]

    back = promotion.rollback_project(news, "news", actor="bob", reason="v2 is worse")
    assert back == {"production": "v1", "rolled_back": "v2"}
    with news.read() as session:
        project = projects.get_project(session, "news")
        assert registry.production(session, project).name == "v1"  # type: ignore[union-attr]
        history = [(h.to_stage, h.actor, h.forced) for h in registry.history(session, project)]
        assert history[-2:] == [("archived", "bob", False), ("production", "bob", False)]
    # Like `heroku rollback`: rolling back again undoes the rollback.
    assert promotion.rollback_project(news, "news", actor="bob")["production"] == "v2"


def test_gate_uses_the_same_current_test_records(news: Store, tmp_path) -> None:
    promotion.promote_version(news, "news", "v1", actor="alice")
    train(news, tmp_path)  # the same recipe again: as good as production
    with news.read() as session:
        project = projects.get_project(session, "news")
        report = promotion.run_gate(session, project, registry.get_version(session, project, "v2"))
        test = dataset.labeled_set(session, project).subset("test")
    assert report.passed, report.result.reasons
    assert report.production == "v1" and report.n_test == len(test)
    # Both models scored on the same records, all of the current test split.
    assert report.result.candidate["n"] == len(test) == report.result.production["n"]  # type: ignore[index]
    data = report.to_dict()
    assert data["settings"]["metric"] == "auto" and data["settings"]["tolerance"] == 0.01
    assert data["metric"] == "accuracy"  # auto on balanced topics
    assert data["baseline"]["accuracy"] < report.result.candidate["accuracy"]
    with news.read() as session:
        project = projects.get_project(session, "news")
        with pytest.raises(Conflict, match="already in production"):
            promotion.run_gate(session, project, registry.get_version(session, project, "v1"))


def test_gate_settings_are_validated_and_applied(news: Store) -> None:
    with news.write() as session:
        project = projects.get_project(session, "news")
        for bad, match in (
            (
                {"gate_metric": "auc"},
                "gate_metric must be one of auto, accuracy, macro_f1, balanced_accuracy",
            ),
            ({"gate_tolerance": 2}, "gate_tolerance must be a number from 0 to 1"),
            ({"gate_alpha": 0}, "between 0 and 1"),
            ({"gate_min_slice_size": 0}, "integer >= 1"),
            ({"calibration": "platt"}, "calibration must be one of"),
            ({"gate_metric": "macro_f1", "gate_test": "mcnemar"}, "compares accuracy"),
        ):
            with pytest.raises(Invalid, match=match):
                configure.update_settings(session, project, bad, actor="test")
        configure.update_settings(
            session, project, {"gate_min_accuracy": 0.99, "gate_max_ece": None}, actor="test"
        )
    with news.read() as session:
        project = projects.get_project(session, "news")
        report = promotion.run_gate(session, project, registry.get_version(session, project, "v1"))
    assert not report.passed
    assert [c["name"] for c in report.result.checks] == ["baseline", "min_accuracy"]
    assert "below the 0.990 floor" in report.result.reasons[0]


def test_auto_promote_promotes_only_when_the_gate_passes(news: Store, tmp_path) -> None:
    result = train(news, tmp_path, auto_promote=True)
    assert result["auto_promote"] == {"promoted": True, "against": None}
    result = train(news, tmp_path, estimator=DUMMY)
    assert result["auto_promote"]["promoted"] is False
    reasons = result["auto_promote"]["reasons"]
    assert "does not beat a constant model" in reasons[0]
    assert any("worse by" in r for r in reasons)
    with news.read() as session:
        project = projects.get_project(session, "news")
        assert registry.production(session, project).name == "v2"  # type: ignore[union-attr]
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "model.gate_refused")
        ).one()
        assert refused.details["version"] == "v3" and refused.details["against"] == "v2"


def test_mcnemar_with_macro_f1_is_refused_whichever_is_set_first(news: Store) -> None:
    with news.write() as session:
        project = projects.get_project(session, "news")
        configure.update_settings(session, project, {"gate_test": "mcnemar"}, actor="test")
        with pytest.raises(Invalid) as refused:
            configure.update_settings(session, project, {"gate_metric": "macro_f1"}, actor="test")
        assert refused.value.message.startswith(
            "gate_metric=macro_f1 cannot be gated with gate_test=mcnemar (the project's gate_test)"
        )
        assert refused.value.details == {
            "field": "gate_metric",
            "gate_metric": "macro_f1",
            "gate_test": "mcnemar",
        }
        both = {"gate_test": "bootstrap", "gate_metric": "macro_f1"}
        configure.update_settings(session, project, both, actor="test")
        with pytest.raises(Invalid, match="Use gate_test=bootstrap with gate_metric=macro_f1"):
            configure.update_settings(session, project, {"gate_test": "mcnemar"}, actor="test")
        assert projects.setting(project, "gate_test") == "bootstrap"


def test_a_stored_mcnemar_macro_f1_pair_is_corrected_loudly(
    news: Store, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    promotion.promote_version(news, "news", "v1", actor="alice")
    train(news, tmp_path)
    with news.write() as session:  # as stored before the pair was checked against the project's
        project = projects.get_project(session, "news")
        project.settings = {**project.settings, "gate_metric": "macro_f1", "gate_test": "mcnemar"}
    with news.write() as session:  # other settings can still be changed
        project = projects.get_project(session, "news")
        configure.update_settings(session, project, {"retrain_every": 20}, actor="test")
    with news.read() as session, caplog.at_level(logging.WARNING, logger="looplab.learn.promotion"):
        project = projects.get_project(session, "news")
        report = promotion.run_gate(session, project, registry.get_version(session, project, "v2"))
    note = (
        "Project 'news' has gate_test=mcnemar with gate_metric=macro_f1, which McNemar's test "
        "cannot compare (it compares accuracy): the paired bootstrap was used instead. Make it "
        "explicit: looplab config news gate_test=bootstrap."
    )
    assert note in report.result.notes and note in caplog.messages
    assert report.options["test"] == "bootstrap" and report.options["metric"] == "macro_f1"
    metric = next(c for c in report.result.checks if c["name"] == "metric")
    assert metric["message"].startswith("macro-F1") and "paired bootstrap" in metric["message"]


def counting(calls: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return function(*args, **kwargs)

    return counted


def test_auto_promote_reuses_the_jobs_labeled_set_and_model(
    news: Store, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    monkeypatch.setattr(dataset, "labeled_set", counting(calls, "labeled_set", dataset.labeled_set))
    groups = neardup.near_duplicate_groups
    monkeypatch.setattr(neardup, "near_duplicate_groups", counting(calls, "minhash", groups))
    monkeypatch.setattr(training, "load_model", counting(calls, "load_model", training.load_model))
    result = train(news, tmp_path, auto_promote=True)
    assert result["auto_promote"] == {"promoted": True, "against": None}
    # One labeled set (one near-duplicate grouping); the artifact just written is not reloaded.
    assert calls == {"labeled_set": 1, "minhash": 1}
    calls.clear()
    result = train(news, tmp_path)  # v3 against v2: only production's artifact is loaded
    assert result["auto_promote"]["promoted"] is True, result
    assert calls == {"labeled_set": 1, "minhash": 1, "load_model": 1}
    with news.read() as session:
        project = projects.get_project(session, "news")
        v3 = registry.get_version(session, project, "v3")
        assert v3.stage == "production"
        assert registry.history(session, project)[-1].reason == "auto_promote: gate passed"


def test_lineage_and_calibration_are_recorded(news: Store, tmp_path) -> None:
    with news.read() as session:
        project = projects.get_project(session, "news")
        model = registry.get_version(session, project, "v1")
        trained = registry.training_annotations(session, model)
        held_out = registry.training_annotations(session, model, "test")
        assert len(trained) == model.n_train and len(held_out) == model.n_test
        assert [m.name for m in registry.models_taught_by(session, trained[0])] == ["v1"]
        assert registry.models_taught_by(session, held_out[0]) == []
        assert sum(model.config["train_label_counts"].values()) == model.n_train
        assert model.config["calibration"]["method"] in ("none", "temperature", "isotonic")
        assert "ECE" in model.config["calibration"]["reason"]
        assert {"accuracy_ci", "per_class", "confusion", "ece", "brier", "slices"} <= set(
            model.metrics
        )
        for name in ("v9", "v" + "9" * 30, "v٣"):  # unknown, beyond BIGINT, a non-ASCII digit
            with pytest.raises(NotFound, match=f"no model '{name}' in project 'news'"):
                registry.get_version(session, project, name)
        method = model.config["calibration"]["method"]
        artifact = promotion.load_version(session, model)
        project_id = project.id
    # A kept calibrator is the artifact's last step, and pool scoring still works through it.
    last = type(artifact[-1]).__name__
    assert last == ("LogisticRegression" if method == "none" else "CalibratedClassifier")
    job = Job(kind="score", project_id=project_id, params={})
    scored = scoring.score_pool(news, Settings(home=tmp_path), job)
    assert scored["model"] == "v1" and scored["scored"] == 300  # imported labels: still open


def test_tampered_artifact_is_refused_with_a_clear_error(news: Store) -> None:
    with news.read() as session:
        project = projects.get_project(session, "news")
        path = registry.artifact_file(session, registry.get_version(session, project, "v1"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(Conflict, match="modified or corrupted after it was saved") as caught:
        promotion.promote_version(news, "news", "v1", actor="alice")
    assert caught.value.code == "artifact_integrity"
    path.unlink()
    with pytest.raises(
        Conflict, match=r"v1 of project .news. cannot be loaded: its model file is missing"
    ) as missing:
        promotion.promote_version(news, "news", "v1", actor="alice")
    assert missing.value.code == "artifact_missing"


def test_a_broken_production_model_fails_the_gate_and_can_be_replaced(
    news: Store, tmp_path
) -> None:
    promotion.promote_version(news, "news", "v1", actor="alice")
    train(news, tmp_path)
    with news.read() as session:
        v1 = registry.get_version(session, projects.get_project(session, "news"), "v1")
        registry.artifact_file(session, v1).unlink()
    with pytest.raises(promotion.GateFailed, match="production cannot be loaded"):
        promotion.promote_version(news, "news", "v2", actor="alice")
    done = promotion.promote_version(
        news, "news", "v2", actor="alice", force=True, reason="v1 lost"
    )
    assert done["forced"] and done["gate"]["checks"][0]["name"] == "production"


def test_near_duplicates_never_straddle_the_split(store: Store) -> None:
    with store.write() as session:
        project = projects.create_project(
            session, "dups", task="text", labels=["a", "b"], actor="t"
        )
        for i in range(120):
            words = " ".join(f"w{i}x{j}" for j in range(20))
            for text in (words, words + " again"):
                add_labeled(session, project, text, {"text": text}, "ab"[i % 2])
    with store.read() as session:
        data = dataset.labeled_set(session, projects.get_project(session, "dups"))
    by_group = dict(zip(data.record_ids, data.splits, strict=True))
    ids = sorted(by_group)
    assert all(by_group[a] == by_group[b] for a, b in zip(ids[::2], ids[1::2], strict=True))
    assert 0.1 < data.splits.count("test") / len(data) < 0.3
