"""Model cards: one Markdown page per version, generated from the registry when asked for.

A card is never stored: ``looplab card news v7`` (or ``GET /api/v1/projects/news/models/v7/card``)
builds it from the registry row, its lineage and its stage history, so the stage and history it
shows are always current. Everything on it was recorded when the version was trained (held-out
metrics, calibration, slices, label counts) or when it changed stage (who, when, why, forced).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab.core.tables import Annotation, ModelVersion, Project, StageChange, TrainingLabel, User
from looplab.learn import dataset, registry

#: The footnote for a version whose stored ECE is optimistic (:func:`optimistic_calibration`);
#: the CLI's ``models`` table marks its ECE with ``*``, the HTML report its ECE and Brier score.
OPTIMISTIC_NOTE = (
    "* trained before calibrators were cross-fitted: a figure marked * includes test records "
    "its calibrator was fitted on, so it is optimistic."
)


def optimistic_calibration(calibration: Mapping[str, Any] | None) -> bool:
    """Whether a version's stored ECE and Brier score are optimistic, given its ``calibration``.

    True for a version that kept a calibrator but has no ``cross_calibrator``
    (:func:`looplab.learn.assess.calibrate`): trained before calibrators were cross-fitted, its
    held-out figures include the half of the test split its calibrator was fitted on.
    """
    calibration = calibration or {}
    return calibration.get("method", "none") != "none" and not calibration.get("cross_calibrator")


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _ci(metrics: dict[str, Any], key: str) -> str:
    ci = metrics.get(f"{key}_ci")
    return f"{_f(metrics.get(key))} [{_f(ci[0])}, {_f(ci[1])}]" if ci else _f(metrics.get(key))


def teachers(session: Session, model: ModelVersion) -> tuple[dict[str, int], dict[str, int]]:
    """Training annotations of ``model`` per annotator and per origin (who taught it what)."""
    base = (
        select(func.count())
        .select_from(TrainingLabel)
        .join(Annotation, Annotation.id == TrainingLabel.annotation_id)
        .where(TrainingLabel.model_id == model.id, TrainingLabel.split == "train")
    )
    per_user = session.execute(
        base.add_columns(User.name)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .group_by(User.name)
    ).all()
    per_origin = session.execute(
        base.add_columns(Annotation.origin).group_by(Annotation.origin)
    ).all()
    return (
        {"(import)" if name is None else str(name): int(n) for n, name in per_user},
        {str(origin): int(n) for n, origin in per_origin},
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


#: What the default pipeline does with each column type (looplab.learn.features).
_FEATURES = {
    "numeric": "numeric (median-imputed, scaled)",
    "boolean": "boolean (0/1)",
    "date": "date (years since 1970, month, weekday)",
    "categorical": "categorical (one-hot)",
    "text": "text (TF-IDF)",
}


def pipeline(config: dict[str, Any], task: str) -> str:
    """What the version's pipeline really is, from its config: features, then the estimator."""
    named = config.get("estimator") or "default"
    estimator = "logistic regression" if named == "default" else f"`{named}`"
    if config.get("task", task) == "text":
        return f"TF-IDF of word 1-2 grams and character 2-5 grams + {estimator}"
    schema: dict[str, str] = config.get("schema") or {}
    if not schema:
        return f"tabular columns (numbers scaled, the rest one-hot) + {estimator}"
    groups = [
        f"{_FEATURES[kind]}: {', '.join(f for f, k in schema.items() if k == kind)}"
        for kind in _FEATURES
        if kind in schema.values()
    ]
    left_out = [f for f, k in schema.items() if k == "identifier"]
    if left_out:
        groups.append(f"left out as identifiers: {', '.join(left_out)}")
    return f"tabular columns by type ({'; '.join(groups)}) + {estimator}"


def model_card(session: Session, project: Project, model: ModelVersion) -> str:
    """The Markdown card of one version (see the module docstring)."""
    m, c = model.metrics or {}, model.config or {}
    changes = list(
        session.scalars(
            select(StageChange).where(StageChange.model_id == model.id).order_by(StageChange.id)
        )
    )
    by_user, by_origin = teachers(session, model)
    production = registry.production(session, project)
    lines = [
        *_summary(project, model, c),
        *_training_data(model, c, by_user, by_origin),
        *_evaluation(m),
        *_calibration(c.get("calibration") or {}),
        *_slices(m.get("slices") or []),
        *_stage_history(changes),
        *_limitations(production),
    ]
    return "\n".join(lines)


def _summary(project: Project, model: ModelVersion, c: dict[str, Any]) -> list[str]:
    """The title and the facts list: stage, who trained it when, task, estimator, artifact."""
    return [
        f"# Model card: {project.name} {model.name}",
        "",
        f"- **Stage:** {model.stage}",
        f"- **Trained:** {str(model.created_at)[:19]} by {model.created_by}"
        + (f" (job {model.job_id})" if model.job_id else ""),
        f"- **Task:** {c.get('task', project.task)} classification of "
        f"{', '.join(c.get('fields', project.fields))} into {', '.join(c.get('classes', []))}",
        f"- **Pipeline:** {pipeline(c, project.task)}",
        f"- **Artifact:** `{model.artifact}` (skops), SHA-256 `{model.sha256}`, checked on load",
        "- **Software:** " + ", ".join(f"{k} {v}" for k, v in (c.get("versions") or {}).items()),
        "",
    ]


def _training_data(
    model: ModelVersion,
    c: dict[str, Any],
    by_user: dict[str, int],
    by_origin: dict[str, int],
) -> list[str]:
    """How much it learned from, per label, and who taught it (per annotator and origin)."""
    lines = [
        "## Training data",
        "",
        f"{model.n_train:,} labeled records (train split), {model.n_test:,} held out. "
        "One consensus label per record (majority; ties to the latest answer); quarantined and "
        "superseded answers are never trained on.",
        "",
    ]
    counts = c.get("train_label_counts") or {}
    if counts:
        lines += _table(["label", "training records"], [[k, f"{v:,}"] for k, v in counts.items()])
        lines.append("")
    for label in c.get("untrained_labels") or []:
        lines += [
            f"**Warning:** label {label!r} has no training record: this model never "
            "predicts it (served with probability 0).",
            "",
        ]
    if by_user:
        lines += _table(
            ["annotator", "annotations trained on"],
            [[k, f"{v:,}"] for k, v in sorted(by_user.items(), key=lambda kv: -kv[1])],
        )
        lines.append("")
    if by_origin:
        lines.append("By origin: " + ", ".join(f"{k} {v:,}" for k, v in by_origin.items()) + ".")
        lines.append("")
    return lines


def _baseline_rows(baseline: dict[str, Any] | None) -> list[list[str]]:
    """The majority baseline's figures: what always answering the training majority scores."""
    if not baseline:
        return []
    name = f"majority baseline (always {baseline['label']!r})"
    figures = " / ".join(_f(baseline.get(k)) for k in ("accuracy", "balanced_accuracy", "macro_f1"))
    return [[name, figures + " (accuracy / balanced accuracy / macro-F1)"]]


def _evaluation(m: dict[str, Any]) -> list[str]:
    """Held-out metrics with their intervals, per class, and the confusion matrix."""
    lines = [
        "## Evaluation",
        "",
        f"On the held-out test split: records whose content hash falls in the lowest "
        f"{100 * dataset.TEST_SHARE:.0f}% of hash space, near-duplicate texts (Jaccard >= "
        f"{dataset.NEAR_DUP_THRESHOLD}) kept on one side. 95% bootstrap intervals.",
        "",
    ]
    if not m.get("n"):
        return [*lines, "No test records: this version was not evaluated.", ""]
    lines += _table(
        ["metric", "value"],
        [
            ["test records", f"{m['n']:,}"],
            ["accuracy", _ci(m, "accuracy")],
            ["balanced accuracy", _ci(m, "balanced_accuracy")],
            ["macro-F1", _ci(m, "macro_f1")],
            *_baseline_rows(m.get("baseline")),
            ["ECE (top-label, 10 bins)", _f(m.get("ece"))],
            ["Brier score", _f(m.get("brier"))],
        ],
    )
    lines.append("")
    per_class = m.get("per_class") or {}
    if per_class:
        lines += _table(
            ["class", "precision", "recall", "F1", "support"],
            [
                [k, _f(v["precision"]), _f(v["recall"]), _f(v["f1"]), str(v["support"])]
                if v["support"]
                else [k, _f(v["precision"]), "no test records", "-", "0"]
                for k, v in per_class.items()
            ],
        )
        lines.append("")
    confusion = m.get("confusion")
    if confusion:
        lines.append("Confusion matrix (rows: true, columns: predicted):")
        lines.append("")
        lines += _table(
            ["", *confusion["labels"]],
            [
                [label, *(str(x) for x in row)]
                for label, row in zip(confusion["labels"], confusion["matrix"], strict=True)
            ],
        )
        lines.append("")
    return lines


def _calibration(calibration: dict[str, Any]) -> list[str]:
    """The calibration method, why, and whether the held-out figures are cross-fitted."""
    text = f"Method: **{calibration.get('method', 'none')}**. "
    if calibration.get("reason"):
        text += calibration["reason"] + "."
    if calibration.get("cross_calibrator"):
        text += (
            " The held-out metrics above are cross-fitted: each test record's calibrated "
            "probabilities come from a calibrator fitted on the other half of the test split."
        )
    elif optimistic_calibration(calibration):
        text += (
            " This version was trained before calibrators were cross-fitted: the ECE and Brier "
            "score above include the half of the test split its calibrator was fitted on, so they "
            "are optimistic."
        )
    return ["## Calibration", "", text, ""]


def _slices(slices: list[dict[str, Any]]) -> list[str]:
    """Accuracy per metadata slice against the rest, the worse ones flagged."""
    lines = ["## Slices", ""]
    if not slices:
        return [*lines, "No metadata slice has enough test records (gate_min_slice_size)."]
    return lines + _table(
        ["slice", "n", "accuracy [95% CI]", "rest", "q-value", "flag"],
        [
            [
                f"{s['field']}={s['value']}",
                str(s["n"]),
                f"{_f(s['accuracy'])} [{_f(s['ci_low'])}, {_f(s['ci_high'])}]",
                _f(s["rest_accuracy"]),
                _f(s["q_value"]),
                "**worse**" if s["flagged"] else "",
            ]
            for s in slices
        ],
    )


def _stage_history(changes: list[StageChange]) -> list[str]:
    """Every stage change: when, from, to, by whom, forced or not, and why."""
    lines = ["", "## Stage history", ""]
    if not changes:
        return [*lines, "Never promoted."]
    return lines + _table(
        ["when", "from", "to", "by", "forced", "reason"],
        [
            [
                str(ch.created_at)[:19],
                ch.from_stage,
                ch.to_stage,
                ch.actor,
                "yes" if ch.forced else "",
                ch.reason.replace("|", "/"),
            ]
            for ch in changes
        ],
    )


def _limitations(production: ModelVersion | None) -> list[str]:
    """What the figures cannot tell, and which version serves now."""
    return [
        "",
        "## Limitations",
        "",
        "- Figures hold for data like the labeled pool; the test split is a sample of it, not of "
        "future traffic (see `looplab` monitoring for drift).",
        "- Labels are people's answers; their agreement bounds the accuracy that can be measured.",
        f"- Production now: {production.name if production else 'none'}. "
        "Promotion goes through the gate (`looplab gate`).",
        "",
    ]
