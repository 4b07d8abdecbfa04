"""The evaluation report: one self-contained HTML page with inline SVG plots (no CDN, no scripts).

:func:`render_html` draws what the registry stored for a version (:mod:`looplab.learn.assess`) and,
when given, the gate's verdict against production:

- headline metrics with 95% bootstrap intervals (ECE and Brier score marked ``*``, with a
  footnote, for a version trained before calibrators were cross-fitted), and the gate's
  checks and reasons;
- a reliability diagram (confidence vs accuracy per bin, with the record count per bin);
- the confusion matrix (row-normalised colours, counts written in the cells);
- per-class precision, recall and F1;
- slice accuracy with Wilson intervals, flagged slices in red;
- the learning curve: accuracy (with its interval) of every version against its training labels.
"""

from __future__ import annotations

import html
import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from looplab.core import projects
from looplab.core.tables import ModelVersion, Project
from looplab.govern import card
from looplab.learn.evaluate import METRIC_LABELS
from looplab.learn.gate import headline

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{padding:.25em .7em;border:1px solid #ddd}
th{background:#f5f5f5;text-align:left}.pass{color:#1a7f37}.fail{color:#c62828;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}.note{color:#666}
"""


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    # Drop the XML prolog and matplotlib's RDF metadata block: only the drawing is inlined.
    return re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)


def reliability_svg(
    reliability: dict[str, Any], ece: float | None, *, optimistic: bool = False
) -> str:
    """Reliability diagram: the diagonal is perfect calibration; bars are records per bin.

    ``optimistic`` marks the ECE with ``*`` (:func:`looplab.govern.card.optimistic_calibration`).
    """
    edges = np.asarray(reliability["edges"], dtype=float)
    conf = np.array([np.nan if v is None else v for v in reliability["confidence"]], dtype=float)
    acc = np.array([np.nan if v is None else v for v in reliability["accuracy"]], dtype=float)
    counts = np.asarray(reliability["counts"], dtype=float)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(4.6, 5.2), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    top.plot([0, 1], [0, 1], ls="--", color="#999", lw=1, label="perfect calibration")
    full = ~np.isnan(acc)
    top.plot(conf[full], acc[full], "o-", color="#1f5fbf", label="model")
    for c, a in zip(conf[full], acc[full], strict=True):
        top.plot([c, c], [c, a], color="#c62828", lw=1, alpha=0.6)
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    star = "*" if optimistic else ""
    top.set_title(f"Reliability (ECE {ece:.3f}{star})" if ece is not None else "Reliability")
    top.legend(loc="upper left", fontsize=8)
    widths = np.diff(edges)
    bottom.bar(edges[:-1], counts, width=widths, align="edge", color="#9bb7e0", edgecolor="white")
    bottom.set_xlabel("confidence of the predicted class")
    bottom.set_ylabel("records")
    return _svg(fig)


def confusion_svg(confusion: dict[str, Any]) -> str:
    """Confusion matrix; colour is the row share (recall), numbers are counts."""
    labels = confusion["labels"]
    matrix = np.asarray(confusion["matrix"], dtype=float)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.6 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{int(matrix[i, j])}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.6 else "#222",
            )
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    return _svg(fig)


def per_class_svg(per_class: dict[str, dict[str, float]]) -> str:
    """Grouped bars of precision, recall and F1 per class.

    A class with no test record gets no bars (0 of 0 is not a failure) and the words "no test
    records" where its bars would be.
    """
    labels = list(per_class)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(labels) + 1.5), 3.4))
    for k, (key, colour) in enumerate(
        (("precision", "#1f5fbf"), ("recall", "#e69f00"), ("f1", "#2e7d32"))
    ):
        values = [per_class[c][key] for c in labels]
        heights = [
            np.nan if v is None or not per_class[c]["support"] else v
            for c, v in zip(labels, values, strict=True)
        ]
        ax.bar(x + (k - 1) * 0.27, heights, 0.27, label=key, color=colour)
    for i, c in enumerate(labels):
        if not per_class[c]["support"]:
            ax.text(i, 0.03, "no test records", rotation=90, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1.22)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title("Per class")
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    return _svg(fig)


def slices_svg(slices: list[dict[str, Any]], overall: float | None) -> str:
    """Accuracy per slice with its Wilson interval; flagged (significantly worse) in red."""
    rows = slices[:30]
    fig, ax = plt.subplots(figsize=(6.0, 0.8 + 0.32 * len(rows)))
    y = np.arange(len(rows))
    acc = np.array([r["accuracy"] for r in rows])
    low = acc - np.array([r["ci_low"] for r in rows])
    high = np.array([r["ci_high"] for r in rows]) - acc
    colours = ["#c62828" if r["flagged"] else "#1f5fbf" for r in rows]
    ax.errorbar(acc, y, xerr=[low, high], fmt="none", ecolor="#888", capsize=3)
    ax.scatter(acc, y, c=colours, zorder=3)
    if overall is not None:
        ax.axvline(overall, ls="--", color="#999", lw=1, label=f"overall {overall:.3f}")
        ax.legend(fontsize=8, loc="lower left")
    ax.set_yticks(y, [f"{r['field']}={r['value']} (n={r['n']})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(max(0.0, float(np.min(acc - low)) - 0.05), 1.0)
    ax.set_xlabel("accuracy (95% Wilson interval)")
    ax.set_title("Slices (red: significantly below the rest)")
    return _svg(fig)


def learning_curve_svg(versions: list[ModelVersion], current: ModelVersion) -> str:
    """Held-out accuracy (with its interval) of every version, labeled with its training labels."""
    points = [v for v in versions if v.metrics.get("accuracy") is not None]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(points) + 2), 3.4))
    x = np.arange(len(points))
    acc = np.array([v.metrics["accuracy"] for v in points])
    cis = [v.metrics.get("accuracy_ci") or [a, a] for v, a in zip(points, acc, strict=True)]
    low = acc - np.array([c[0] for c in cis])
    high = np.array([c[1] for c in cis]) - acc
    ax.errorbar(x, acc, yerr=[low, high], fmt="o-", color="#1f5fbf", capsize=3)
    for i, v in enumerate(points):
        if v.stage == "production":
            ax.plot([i], [acc[i]], "*", ms=14, color="#e69f00", zorder=3)
        if v.id == current.id:
            ax.plot([i], [acc[i]], "o", ms=11, mfc="none", mec="#c62828", zorder=3)
    ax.set_xticks(x, [f"{v.name}\n{v.n_train:,}" for v in points])
    ax.set_xlabel("version (training labels)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Versions (star: production, circle: this report)")
    return _svg(fig)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def _gate_html(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return "<p class=note>Gate not run.</p>"
    verdict = "<span class=pass>PASS</span>" if gate["passed"] else "<span class=fail>FAIL</span>"
    against = gate.get("production") or "nothing (no production model)"
    parts = [
        f"<p>{verdict}: {_e(gate['candidate'])} against {_e(against)} on "
        f"{gate['n_test']:,} current test records.</p>"
    ]
    if gate["reasons"]:
        parts.append("<ul>" + "".join(f"<li class=fail>{_e(r)}</li>" for r in gate["reasons"]))
        parts.append("</ul>")
    rows = "".join(
        f"<tr><td>{_e(c['name'])}</td><td>{c['value']:+.3f}</td><td>{c['threshold']:.3f}</td>"
        f"<td class={'pass' if c['passed'] else 'fail'}>{'pass' if c['passed'] else 'fail'}"
        f"</td><td>{_e(c['message'])}</td></tr>"
        for c in gate["checks"]
    )
    parts.append(
        "<table><tr><th>check</th><th>value</th><th>threshold</th><th></th><th>detail</th></tr>"
        f"{rows}</table>"
    )
    parts += [f"<p class=note>{_e(n)}</p>" for n in gate.get("notes", [])]
    return "".join(parts)


def render_html(
    project: Project,
    model: ModelVersion,
    versions: list[ModelVersion],
    gate: dict[str, Any] | None = None,
) -> str:
    """The whole report as one HTML string (see the module docstring)."""
    m = model.metrics or {}
    calibration = (model.config or {}).get("calibration") or {}
    optimistic = card.optimistic_calibration(calibration)
    star = "*" if optimistic else ""
    title = f"{project.name} {model.name}: evaluation"
    body = [f"<h1>{_e(title)}</h1>"]
    method = _e(calibration.get("method", "none"))
    why = f" ({_e(calibration['reason'])})" if calibration.get("reason") else ""
    body.append(
        f"<p>Stage <b>{_e(model.stage)}</b>; trained on {model.n_train:,} labels, evaluated on "
        f"{model.n_test:,} held-out records; calibration: <b>{method}</b>{why}.</p>"
    )
    if m.get("n"):
        rows = []
        lead = headline(m, str(projects.setting(project, "gate_metric")))["metric"]
        baseline = m.get("baseline") or {}
        # The metric the project gates on first, each beside the majority baseline's value.
        keys = [lead, *(k for k in ("accuracy", "balanced_accuracy", "macro_f1") if k != lead)]
        for key in keys:
            ci = m.get(f"{key}_ci")
            span = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            name = METRIC_LABELS[key] + (" (gated)" if key == lead else "")
            rows.append(
                f"<tr><td>{name}</td><td>{_fmt(m.get(key))}{span}</td>"
                f"<td>{_fmt(baseline.get(key))}</td></tr>"
            )
        rows.append(f"<tr><td>ECE</td><td>{_fmt(m.get('ece'))}{star}</td><td></td></tr>")
        rows.append(f"<tr><td>Brier</td><td>{_fmt(m.get('brier'))}{star}</td><td></td></tr>")
        always = f" (always {_e(repr(baseline['label']))})" if baseline.get("label") else ""
        body.append(
            "<table><tr><th>metric</th><th>value [95% CI]</th>"
            f"<th>majority baseline{always}</th></tr>" + "".join(rows)
        )
        body.append("</table>")
        if optimistic:
            body.append(f"<p class=note>{_e(card.OPTIMISTIC_NOTE)}</p>")
    body.append("<h2>Promotion gate</h2>" + _gate_html(gate))
    if m.get("n"):
        body.append("<h2>Calibration and errors</h2><div class=grid>")
        reliability = reliability_svg(m["reliability"], m.get("ece"), optimistic=optimistic)
        body.append(f"<figure>{reliability}</figure>")
        body.append(f"<figure>{confusion_svg(m['confusion'])}</figure></div>")
        body.append(f"<h2>Per class</h2><figure>{per_class_svg(m['per_class'])}</figure>")
        slices = m.get("slices") or []
        body.append("<h2>Slices</h2>")
        if slices:
            body.append(f"<figure>{slices_svg(slices, m.get('accuracy'))}</figure>")
        else:
            body.append("<p class=note>No metadata slice has enough test records.</p>")
    else:
        body.append("<p class=note>No held-out records: nothing to plot.</p>")
    if any(v.metrics.get("accuracy") is not None for v in versions):
        body.append(
            f"<h2>Learning curve</h2><figure>{learning_curve_svg(versions, model)}</figure>"
        )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
