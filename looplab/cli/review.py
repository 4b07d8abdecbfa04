"""``looplab quality``: the label-error scan and what reviewers made of it.

Registered on :data:`looplab.cli.app.app` when :mod:`looplab.cli` is imported.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from looplab.cli.app import JsonOpt, app, emit_json, err, opened, out
from looplab.core import jobs, projects
from looplab.core.settings import Settings


@app.command()
def quality(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    run: Annotated[
        bool,
        typer.Option(
            "--run",
            help="Scan the labeled records now (out-of-fold probabilities + confident "
            "learning) and queue the suspects for review.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the folds and estimators.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """The last label-error scan: suspects, review decisions, reviewers' confirm rate."""
    # Imported here: the scan's maths (scipy, scikit-learn) stays out of `looplab --help`.
    from looplab import worker
    from looplab.trust import review

    with opened() as store:
        if run:
            with store.write() as session:
                project = projects.get_project(session, project_name)
                jobs.enqueue(
                    session, review.SCAN_KIND, project_id=project.id, params={"seed": seed}
                )
            with err.status("scanning labels..."):
                worker.drain(store, Settings())
        with store.read() as session:
            state = review.summary(session, projects.get_project(session, project_name))
    if as_json:
        emit_json(state)
        return
    print_summary(state)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def print_summary(state: dict[str, Any]) -> None:
    scan = state["scan"]
    name = state["project"]
    if scan is None:
        out.print(f"[bold]{name}[/]: no label-error scan yet; run `looplab quality {name} --run`")
        return
    when = f"{(scan['finished_at'] or scan['created_at']):%Y-%m-%d %H:%M} UTC"
    if scan["status"] == "failed":
        out.print(f"[bold red]scan {scan['job_id']} failed[/] ({when}): {scan['error']}")
        return
    if scan["status"] != "done":
        queued = f"{scan['created_at']:%H:%M} UTC"
        out.print(f"scan {scan['job_id']} is {scan['status']} (queued {queued})")
        return
    if scan["skipped"]:
        out.print(f"[yellow]not scanned[/] ({when}): {scan['skipped']}")
        return
    counts, p = scan["counts"], scan["precision"]
    out.print(
        f"[bold]{name}[/]: scan {scan['job_id']} at {when}: {scan['n_scanned']:,} labeled records, "
        f"{scan['n_suspects']:,} suspects ({_pct(scan['estimated_error_share'])} estimated wrong), "
        f"{scan['n_queued']:,} queued for review; {scan['folds']} folds of "
        f"{', '.join(scan['estimators'])} in {scan['seconds']:.1f} s",
        highlight=False,
    )
    others = [
        f"{scan[key]:,} {words}"
        for key, words in (
            ("n_low_consensus", "held back by a low consensus"),
            ("n_flagged_annotator", "labeled by a flagged annotator"),
        )
        if scan.get(key)
    ]
    if others:
        out.print(f"also queued: {'; '.join(others)}", highlight=False)
    out.print(
        f"review: {counts['open']:,} open, {counts['kept']:,} kept, "
        f"{counts['relabeled']:,} relabeled, {counts['ambiguous']:,} ambiguous",
        highlight=False,
    )
    if p["decided"]:
        out.print(
            f"confirm rate (the scan's measured precision): {p['confirmed']} of {p['decided']} "
            f"decided = {_pct(p['rate'])} [95% CI {_pct(p['low'])}, {_pct(p['high'])}]",
            highlight=False,
        )
    else:
        out.print("confirm rate: no decision yet (review the queue on the Review page)")
