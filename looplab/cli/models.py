"""``looplab train``, ``models``, ``gate``, ``promote``, ``rollback``, ``card`` and ``report``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from looplab.cli.app import (
    JsonOpt,
    actor,
    app,
    emit_json,
    err,
    opened,
    out,
    raise_exit,
)
from looplab.core import projects
from looplab.core.settings import Settings


@app.command()
def train(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    force: Annotated[
        bool,
        typer.Option(help="Train even if a version already learned from exactly these labels."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a new model version on the project's labels now, then re-score the pool.

    A version trained on exactly the same labels with the same recipe is not registered twice:
    the command says which version it matches (``--force`` trains anyway).
    """
    import time

    from looplab import worker as worker_module
    from looplab.core import jobs
    from looplab.core.tables import Job

    started = time.perf_counter()  # the whole command: queue, train, re-score, every job drained
    settings = Settings()
    with opened() as store:
        with store.write() as session:
            project = projects.get_project(session, project_name)
            params = {"actor": actor(), "skip_identical": not force}
            job = jobs.enqueue(session, "train", project_id=project.id, params=params)
            job_id = job.id
        with err.status("training..."):
            while True:  # a running server's worker may hold the job: wait for it to end
                worker_module.drain(store, settings)
                with store.read() as session:
                    done = session.get(Job, job_id)
                    assert done is not None
                    if done.status not in ("queued", "running"):
                        break
                time.sleep(0.5)
            result = {"status": done.status, "error": done.error, **(done.result or {})}
    result["train_seconds"] = result.pop("seconds", None)
    result["seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        emit_json(result)
    elif done.status != "done":
        err.print(f"[bold red]training failed:[/] {done.error}")
    elif "skipped" in result:
        err.print(f"not trained: {result['skipped']}")
    else:
        fitting = result["train_seconds"]
        out.print(
            f"trained {result['model']} on {result['n_train']:,} labels; held-out "
            f"{_lead(result)} on {result['n_test']:,}; "
            + (result.get("figures") or f"calibration: {result.get('calibration', 'none')}")
            + f" ({result['seconds']:.1f} s in all"
            + (
                f", of which training {fitting:.1f} s and re-scoring the pool the rest)"
                if fitting is not None
                else ")"
            ),
            highlight=False,
        )
        for warning in result.get("warnings") or []:
            err.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
        auto = result.get("auto_promote")
        if auto is not None:
            verdict = (
                "promoted"
                if auto["promoted"]
                else "not promoted: " + "; ".join(auto.get("reasons", []))
            )
            out.print(f"auto_promote: {verdict}", highlight=False)
    if done.status != "done":
        raise typer.Exit(1)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _lead(result: dict[str, Any]) -> str:
    """The gated metric first, against the majority baseline, then the other two metrics."""
    from looplab.learn.evaluate import METRIC_LABELS

    lead = result.get("metric") or "accuracy"
    others = [m for m in ("accuracy", "balanced_accuracy", "macro_f1") if m != lead]
    text = f"{METRIC_LABELS[lead]} {_f(result.get(lead))}"
    if result.get("baseline") is not None:
        text += (
            f" (majority baseline {_f(result['baseline'])}: always {result['baseline_label']!r})"
        )
    return text + "".join(f", {METRIC_LABELS[m]} {_f(result.get(m))}" for m in others)


@app.command()
def models(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")], as_json: JsonOpt = False
) -> None:
    """Model versions: stage, held-out metrics, how many labels each saw, what training cost.

    ``train s`` is the training's wall time (labels read, fitted, assessed, artifact saved) and
    ``peak MB`` the resident memory it added at its peak; ``-`` for versions trained before
    costs were recorded.

    An ECE marked ``*`` is optimistic (:func:`looplab.govern.card.optimistic_calibration`); a
    footnote says why.
    """
    from looplab.govern import card
    from looplab.learn import registry
    from looplab.learn.evaluate import METRIC_LABELS
    from looplab.learn.gate import headline

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        gate_metric = str(projects.setting(project, "gate_metric"))
        rows = [
            {
                "version": m.name,
                "stage": m.stage,
                "n_train": m.n_train,
                "n_test": m.n_test,
                **headline(m.metrics, gate_metric),
                "untrained_labels": m.config.get("untrained_labels") or [],
                "ece": m.metrics.get("ece"),
                "ece_optimistic": card.optimistic_calibration(m.config.get("calibration")),
                "calibration": (m.config.get("calibration") or {}).get("method", "none"),
                "train_label_counts": m.config.get("train_label_counts"),
                # Versions trained before costs were recorded have none.
                "seconds": (m.config.get("training") or {}).get("seconds"),
                "peak_mb": (m.config.get("training") or {}).get("peak_mb"),
                "sha256": m.sha256,
                "created_at": m.created_at,
            }
            for m in registry.list_versions(session, project)
        ]
    if as_json:
        emit_json(rows)
        return
    # The gated metric leads, beside what always answering the majority scores on it.
    table = Table("version", "stage", "labels", "test", "gated on", "baseline")
    for name in ("accuracy", "bal. acc.", "macro-F1", "ECE", "calibration", "train s", "peak MB"):
        table.add_column(name)
    for name in ("created",):
        table.add_column(name)
    for r in rows:
        lead = f"{METRIC_LABELS[r['metric']]} {_f(r['value'])}" if r["value"] is not None else "-"
        figures = [lead, _f(r["baseline"])]
        figures += [_f(r[k]) for k in ("accuracy", "balanced_accuracy", "macro_f1", "ece")]
        if r["ece_optimistic"] and r["ece"] is not None:
            figures[-1] += "*"
        table.add_row(
            str(r["version"]),
            str(r["stage"]),
            f"{r['n_train']:,}",
            f"{r['n_test']:,}",
            *figures,
            str(r["calibration"]),
            "-" if r["seconds"] is None else f"{r['seconds']:.1f}",
            "-" if r["peak_mb"] is None else f"{r['peak_mb']:,.0f}",
            str(r["created_at"])[:16],
        )
    out.print(table)
    if any(r["ece_optimistic"] and r["ece"] is not None for r in rows):
        out.print(card.OPTIMISTIC_NOTE, highlight=False)
    for r in rows:
        if r["untrained_labels"]:
            missing = ", ".join(repr(label) for label in r["untrained_labels"])
            out.print(
                f"{r['version']} never saw {missing} in training: it cannot predict them.",
                highlight=False,
            )


def _print_gate(data: dict[str, Any]) -> None:
    from looplab.learn.evaluate import METRIC_LABELS

    what = f"replace {data['production']}" if data["production"] else "go to production"
    metric, base = data.get("metric"), data.get("baseline")
    if metric and base:  # the gated metric first, against always answering the majority
        line = f"{METRIC_LABELS[metric]} {_f(data['candidate_metrics'].get(metric))}"
        if data.get("production_metrics"):
            line += f" (production {_f(data['production_metrics'].get(metric))})"
        line += f"; majority baseline {_f(base.get(metric))} (always {base['label']!r})"
        out.print(line, highlight=False)
    if data["passed"]:
        out.print(
            f"[green]PASS[/]: {data['candidate']} may {what} ({data['n_test']:,} test records)",
            highlight=False,
        )
    else:
        err.print(
            f"[bold red]FAIL[/]: {data['candidate']} may not {what} "
            f"({data['n_test']:,} test records):",
            highlight=False,
        )
        for reason in data["reasons"]:
            err.print(f"  - {reason}", highlight=False)
    for note in data["notes"]:
        out.print(f"  [dim]{note}[/]", highlight=False)


@app.command()
def gate(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    version: Annotated[str, typer.Argument(help="Candidate version, e.g. v7.")],
    as_json: JsonOpt = False,
) -> None:
    """Exit 0 if VERSION may replace production, else 1 with every reason (settings: gate_*)."""
    from looplab.learn import promotion, registry

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        candidate = registry.get_version(session, project, version)
        data = promotion.run_gate(session, project, candidate).to_dict()
    if as_json:
        emit_json(data)
    else:
        _print_gate(data)
    raise typer.Exit(0 if data["passed"] else 1)


@app.command()
def promote(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    version: Annotated[str, typer.Argument(help="Version to put in production, e.g. v7.")],
    force: Annotated[bool, typer.Option(help="Promote even if the gate fails (audited).")] = False,
    reason: Annotated[str, typer.Option(help="Why; required with --force.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Put VERSION in production if the gate passes (exit 1 if it refuses); audited."""
    from looplab.learn import promotion

    with opened() as store:
        try:
            data = promotion.promote_version(
                store, project_name, version, actor=actor(), force=force, reason=reason
            )
        except promotion.GateFailed as exc:
            reasons = exc.details.get("reasons", [])
            if as_json:
                emit_json({"promoted": None, "refused": version, "reasons": reasons})
            else:
                err.print(f"[bold red]refused:[/] the gate rejects {version}:", highlight=False)
                for line in reasons:
                    err.print(f"  - {line}", highlight=False)
                err.print("  (promote anyway with --force --reason '...'; it is audited)")
            raise typer.Exit(1) from None
    if as_json:
        emit_json(data)
        return
    how = " [bold yellow](forced past a failed gate)[/]" if data["forced"] else ""
    out.print(
        f"{data['promoted']} is in production{how}; previous: {data['previous'] or 'none'}",
        highlight=False,
    )


@app.command()
def rollback(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Put the previous production version back (audited)."""
    from looplab.learn import promotion

    with opened() as store:
        data = promotion.rollback_project(store, project_name, actor=actor(), reason=reason)
    if as_json:
        emit_json(data)
    else:
        out.print(f"{data['production']} is in production again (was {data['rolled_back']})")


@app.command()
def card(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    version: Annotated[str, typer.Argument(help="Version, e.g. v7.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Markdown file (default: stdout).")
    ] = None,
) -> None:
    """The version's model card (Markdown), generated from the registry."""
    from looplab.govern import card as cards
    from looplab.learn import registry

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        text = cards.model_card(session, project, registry.get_version(session, project, version))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"model card: {output}")


@app.command()
def report(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    html_path: Annotated[Path, typer.Option("--html", help="HTML file to write.")] = Path(
        "report.html"
    ),
    version: Annotated[
        str | None, typer.Option(help="Version to report (default: the latest).")
    ] = None,
    run_gate: Annotated[
        bool, typer.Option("--gate/--no-gate", help="Run the gate against production.")
    ] = True,
) -> None:
    """Write a self-contained HTML evaluation report with plots (no network needed to view)."""
    from looplab.govern import report as reports
    from looplab.learn import promotion, registry

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        versions = registry.list_versions(session, project)
        if not versions:
            raise_exit(f"project {project_name!r} has no model yet; run `looplab train`")
        model = versions[-1] if version is None else registry.get_version(session, project, version)
        gate_data = None
        if run_gate and model.stage != "production":
            gate_data = promotion.run_gate(session, project, model).to_dict()
        page = reports.render_html(project, model, versions, gate_data)
    html_path.write_text(page, encoding="utf-8")
    out.print(f"report for {model.name}: {html_path} ({len(page) / 1024:.0f} KB)")
