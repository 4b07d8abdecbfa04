"""``looplab gc``: remove the model versions and artifacts retention does not keep."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from looplab.cli.app import JsonOpt, actor, app, emit_json, opened, out


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@app.command()
def gc(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove model versions (and their artifact files) that retention does not keep.

    Kept: production, the previous production, the latest version, the newest
    ``keep_candidates`` candidates (a project setting), and any version the audit log names,
    people are shown suggestions from, or that served predictions. Each removal is audited.
    """
    from looplab.learn import retention

    with opened() as store:
        report = retention.collect(store, project_name, actor=actor(), dry_run=dry_run)
    if as_json:
        emit_json(report)
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    verb = "would remove" if report["dry_run"] else "removed"
    table = Table("version", "decision", "why", title=f"retention of {report['project']}")
    for kept in report["kept"]:
        table.add_row(kept["version"], "keep", ", ".join(kept["reasons"]))
    for gone in report["removed"]:
        table.add_row(gone["version"], verb, f"{gone['stage']}, {_mb(gone['bytes'])}")
    out.print(table)
    orphans = report["orphans"]
    out.print(
        f"{verb} {len(report['removed'])} version(s) and {len(orphans)} orphan file(s): "
        f"{_mb(report['bytes_freed'])} (keep_candidates={report['keep_candidates']}); "
        f"{report['lineage_runs_pruned']:,} lineage run(s) pruned",
        highlight=False,
    )
