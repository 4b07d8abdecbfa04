"""``looplab drift``, ``looplab monitor`` and ``looplab triggers``: the watch commands.

Registered on :data:`looplab.cli.app.app` when :mod:`looplab.cli` is imported (its
``__init__`` imports this module), so they share the app's ``opened()`` store handling and exit
codes.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from looplab.cli.app import JsonOpt, app, emit_json, err, opened, out
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.watch import overview


def _num(x: Any, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _p(x: Any) -> str:
    return "-" if x is None else f"{x:.2g}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def print_drift(drift: dict[str, Any], title: str) -> None:
    """The per-feature table of a drift report, then the joint tests and the verdict."""
    table = Table(title=title, title_justify="left")
    for col in ("feature", "kind", "test", "p", "Holm p", "BH q", "effect", "floor", "verdict"):
        table.add_column(col, justify="right" if col in ("p", "Holm p", "BH q") else "left")
    for f in sorted(drift["features"], key=lambda f: (f["p_value"] is None, f["p_value"])):
        verdict = (
            "[bold red]DRIFT[/]"
            if f["drift"]
            else "blamed"
            if f["blamed"]
            else "trivial"
            if f["significant"]
            else ""
        )
        table.add_row(
            f["name"],
            f["kind"],
            f["test"],
            _p(f["p_value"]),
            _p(f["p_holm"]),
            _p(f["q_value"]),
            f"{_num(f['effect_size'])} {f['effect_name']}",
            f"{f['min_effect']:g}",
            verdict,
        )
    out.print(table)
    multi = drift.get("multivariate")
    if multi:
        out.print(
            f"multivariate {multi['name']}: p {_p(multi['p_value'])} (alpha "
            f"{multi['details'].get('alpha', 0):.3g}), {multi['effect_name']} "
            f"{_num(multi['effect_size'])}{'  [bold red]DRIFT[/]' if multi['drift'] else ''}"
        )
    pred = drift.get("prediction")
    if pred:
        out.print(
            f"predicted labels: chi2 p {_p(pred['p_value'])}, jensen_shannon "
            f"{_num(pred['effect_size'])}{'  [bold yellow]changed[/]' if pred['drift'] else ''}"
        )
    verdict = "[bold red]ALARM[/]" if drift["alarm"] else "[green]no alarm[/]"
    blamed = ", ".join(drift["blamed"]) or "none"
    out.print(f"{verdict} (family-wise alpha {drift['alpha']:g}); blamed: {blamed}")
    for reason in drift["reasons"]:
        out.print(f"  [dim]{reason}[/]")


@app.command()
def drift(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    window: Annotated[
        str, typer.Option(help="How far back to read predictions: 30m, 12h, 1d, 2w.")
    ] = "1d",
    as_json: JsonOpt = False,
) -> None:
    """Drift of the last WINDOW of predictions against the production model's training data."""
    with opened() as store:
        result = overview.drift_now(store, project_name, window)
    if as_json:
        emit_json(result)
        return
    if result["drift"] is None:
        out.print(f"no predictions by {result['model_version']} in the last {window}")
        return
    est = result["estimate"]
    out.print(
        f"[bold]{project_name}[/] {result['model_version']}: {result['n']:,} predictions in the "
        f"last {window} against {result['reference_n']:,} training records"
    )
    print_drift(result["drift"], "per feature")
    out.print(
        f"estimated accuracy (CBPE) {_pct(est['accuracy'])} "
        f"[{_pct(est['ci_low'])}, {_pct(est['ci_high'])}]: {est['status']} ({est['reason']})",
        highlight=False,
    )
    out.print(f"  [dim]The estimate {est['assumes']}[/]", highlight=False)
    if est.get("calibration_note"):
        out.print(f"  [dim]{est['calibration_note']}[/]", highlight=False)


@app.command()
def monitor(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    run: Annotated[
        bool,
        typer.Option("--run", help="Close the windows that are due, and the open one, now."),
    ] = False,
    last: Annotated[int, typer.Option(help="Windows to list.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Current state: level and alarm, labelled and estimated accuracy, drift, recent windows."""
    from looplab import worker
    from looplab.core import jobs

    with opened() as store:
        if run:
            with store.write() as session:
                project = projects.get_project(session, project_name)
                jobs.enqueue(session, "monitor", project_id=project.id, params={"force": True})
            with err.status("monitoring..."):
                worker.drain(store, Settings())
        with store.read() as session:
            state = overview.monitor_state(
                session, projects.get_project(session, project_name), limit=max(last, 1)
            )
    if as_json:
        emit_json(state)
        return
    latest = state["latest"]
    closes = (
        f"closes at {state['min_predictions']:,}"
        if state["window"] == "count"
        else f"closes when its {state['window']} period ends, by "
        f"{state['window_time_field'] or 'request time'}"
    )
    out.print(
        f"[bold]{project_name}[/]: production model {state['production_model'] or 'none'}; "
        f"{len(state['windows'])} windows shown, {state['alarms']} alarms (accuracy at risk), "
        f"{state['warnings']} warnings; {state['pending_predictions']:,} of its predictions wait "
        f"for the next window ({closes})"
    )
    if latest is None:
        out.print("no monitor window yet")
    else:
        _print_latest(latest, state)
    table = Table(title="windows", title_justify="left")
    for col in ("#", "model", "span", "n", "level", "feedback acc", "audit acc", "CBPE", "risk"):
        table.add_column(col)
    for w in state["windows"][-last:]:
        fb, au, est = w["feedback"] or {}, w["audit"] or {}, w["estimate"] or {}
        table.add_row(
            str(w["id"]),
            str(w["model_version"]),
            _span(w),
            f"{w['n']:,}",
            _level(w["level"]),
            f"{_pct(fb.get('accuracy'))} (n={fb.get('n', 0)})",
            f"{_pct(au.get('accuracy'))} (n={au.get('n', 0)})",
            f"{_pct(est.get('accuracy'))} {est.get('status', '')}",
            ", ".join(f"{r['feature']} {100 * r['accuracy_effect']:+.1f}" for r in w["risk"][:3]),
        )
    if state["windows"]:
        out.print(table)
        out.print(f"[dim]The estimate (CBPE) {state['estimate_assumes']}[/]", highlight=False)
    _print_triggers(state["triggers"])


_LEVEL_STYLE = {"performance": "[bold red]performance[/]", "predictions": "[yellow]predictions[/]"}


def _level(level: str) -> str:
    return _LEVEL_STYLE.get(level, "[yellow]inputs[/]" if level == "inputs" else "none")


def _span(w: dict[str, Any]) -> str:
    period = w.get("period")
    if period:
        return f"{period['start'][:16]} to {period['end'][:16]}"
    return f"{str(w['start'])[:16]} to {str(w['end'])[:16]}"


def _print_latest(latest: dict[str, Any], state: dict[str, Any]) -> None:
    """The latest window: its level and why, then labelled accuracy before the estimate."""
    fb, au = latest["feedback"] or {}, latest["audit"] or {}
    est, lat = latest["estimate"] or {}, latest["latency"] or {}
    out.print(
        f"latest window #{latest['id']} ({latest['model_version']}: {latest['n']:,} "
        f"predictions, {_span(latest)}): level {_level(latest['level'])}"
        + (" [bold red]ALARM[/]" if latest["alarm"] else "")
        + (f", alarm streak {state['alarm_streak']}" if state["alarm_streak"] else "")
    )
    for reason in latest["level_reasons"]:
        out.print(f"  [dim]{reason}[/]", highlight=False)
    used = latest["labels_used"]
    out.print(
        f"  accuracy on the audit sample {_pct(au.get('accuracy'))} "
        f"[{_pct(au.get('ci_low'))}, {_pct(au.get('ci_high'))}] on {au.get('n', 0):,}; "
        f"on volunteered feedback (possibly selective) {_pct(fb.get('accuracy'))} "
        f"[{_pct(fb.get('ci_low'))}, {_pct(fb.get('ci_high'))}] on {fb.get('n', 0):,}"
        + (f"; the level used the {used}" if used else "; too few labels to test")
    )
    out.print(
        f"  estimated (CBPE) {_pct(est.get('accuracy'))} [{_pct(est.get('ci_low'))}, "
        f"{_pct(est.get('ci_high'))}]: {est.get('status', 'untrusted')} ({est.get('reason')})",
        highlight=False,
    )
    out.print(
        f"  latency p50 {_num(lat.get('p50_ms'), '.1f')} ms, p95 {_num(lat.get('p95_ms'), '.1f')}"
        f" ms, p99 {_num(lat.get('p99_ms'), '.1f')} ms"
    )
    if latest["risk"]:
        risk = ", ".join(
            f"{r['feature']} {100 * r['accuracy_effect']:+.1f} pts" for r in latest["risk"]
        )
        out.print(f"  drifted features by effect on accuracy (mix change alone): {risk}")
    if latest.get("unknown"):
        counts = ", ".join(f"{k} {v:,}" for k, v in latest["unknown"].items())
        out.print(f"  [yellow]categories unseen in training[/] (predictions): {counts}")


def _print_triggers(rules: list[dict[str, Any]]) -> None:
    if not rules:
        out.print("no trigger rules (set them with `looplab config PROJECT triggers='[...]'`)")
        return
    table = Table(title="triggers", title_justify="left")
    for col in ("rule", "when", "actions", "fired", "last decision"):
        table.add_column(col)
    for r in rules:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        last = r["last_decision"]
        said = "never evaluated"
        if last:
            said = f"{'[bold]FIRED[/]: ' if last['fired'] else ''}{last['reason']}"
            # agreement_below judges people's answers, not a window.
            where = f"window #{last['window']}, " if last["window"] is not None else ""
            said += f" ({where}{str(last['at'])[:19]})"
        table.add_row(
            r["name"],
            f"{r['when']} ({params})",
            ", ".join(r["actions"]),
            str(r["times_fired"]),
            said,
        )
    out.print(table)


@app.command()
def triggers(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")], as_json: JsonOpt = False
) -> None:
    """The trigger rules in force and what each last decided."""
    with opened() as store, store.read() as session:
        rules = overview.trigger_state(session, projects.get_project(session, project_name))
    if as_json:
        emit_json(rules)
        return
    _print_triggers(rules)
