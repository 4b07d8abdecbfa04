"""``looplab gold``, ``agreement``, ``annotators``, ``quarantine`` and ``release``: trust.

Registered on :data:`looplab.cli.app.app` when :mod:`looplab.cli` is imported. Every write runs
in one transaction through the services of :mod:`looplab.trust` (audited there); bad input exits
2 with nothing written.
"""

from __future__ import annotations

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
    raise_invalid,
    split_csv,
)
from looplab.core import projects
from looplab.govern import access

Project = Annotated[str, typer.Argument(metavar="PROJECT")]


@app.command("gold")
def gold(
    project_name: Project,
    path: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file of known answers.")],
    label: Annotated[str, typer.Option(help="Column of the known answers.")],
    text: Annotated[str | None, typer.Option(help="Column holding the text (text tasks).")] = None,
    fields: Annotated[str | None, typer.Option(help="Input columns (tabular tasks).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, jsonl or parquet.")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV/JSONL.")] = "utf-8",
    as_json: JsonOpt = False,
) -> None:
    """Import gold records (known answers): handed out at gold_rate, graded, trained once."""
    from looplab.trust import goldfile  # the readers and numpy: only when called

    with opened() as store:
        if not path.exists():
            raise_invalid(f"{path}: no such file")
        with store.write() as session:
            project = projects.get_project(session, project_name)
            report = goldfile.import_gold(
                session,
                project,
                path,
                label=label,
                text=text,
                fields=split_csv(fields),
                fmt=fmt,
                encoding=encoding,
                actor=actor(),
            )
    if as_json:
        emit_json(report)
        return
    out.print(
        f"{report['rows']:,} gold rows: {report['gold']:,} new gold records "
        f"({report['matched']:,} found among the project's records, {report['created']:,} "
        f"created); set gold_rate with `looplab config {project_name} gold_rate=0.05`"
    )


def _ci(entry: dict[str, Any] | None, key: str = "alpha") -> str:
    if not entry or entry.get(key) is None:
        return "-"
    if entry.get("low") is None:
        return f"{entry[key]:.3f}"
    return f"{entry[key]:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


@app.command("agreement")
def agreement(
    project_name: Project,
    by: Annotated[str, typer.Option(help="Time batches: day, week or month.")] = "week",
    min_shared: Annotated[
        int, typer.Option(help="Records two people must share for their kappa.")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Krippendorff's alpha (overall, per label, per batch) and Cohen's kappa per pair."""
    from looplab.trust import agreement_report  # numpy, scikit-learn: only when called

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        found = agreement_report.agreement(session, project, by=by, min_shared=min_shared)
    if as_json:
        emit_json(found)
        return
    if "overall" not in found:
        out.print(found["note"])
        return
    overall = found["overall"]
    out.print(
        f"Krippendorff's alpha {_ci(overall)} on {overall['n_records']:,} records with "
        f"overlap ({overall['n_labels']:,} answers; 95% bootstrap interval)"
    )
    table = Table("label", "alpha (one vs rest)", title="per label", title_justify="left")
    for name, entry in found["per_label"].items():
        table.add_row(name, _ci(entry))
    out.print(table)
    table = Table(found["by"], "alpha", "records", title="over time", title_justify="left")
    for entry in found["per_batch"]:
        table.add_row(entry["batch"], _ci(entry), str(entry["n_records"]))
    out.print(table)
    if not found["pairs"]:
        out.print(f"no pair of people shares {found['min_shared']} records yet (--min-shared)")
        return
    table = Table("a", "b", "shared", "kappa", title="pairs", title_justify="left")
    for pair in found["pairs"]:
        table.add_row(pair["a"], pair["b"], str(pair["n_shared"]), _ci(pair, "kappa"))
    out.print(table)


def _person_row(person: dict[str, Any]) -> list[str]:
    gold = person.get("gold")
    worst = person.get("worst_confusion")
    seconds = person.get("median_seconds")
    estimated = person.get("estimated_accuracy")
    return [
        person["user"],
        str(person["labels"]),
        "-" if seconds is None else f"{seconds:.1f}",
        "-" if not gold else f"{gold['right']}/{gold['n']} [{gold['low']:.2f}, {gold['high']:.2f}]",
        "-" if estimated is None else f"{estimated:.3f}",
        "-" if not worst else f"{worst['truth']} -> {worst['answered']} {worst['rate']:.0%}",
        "; ".join(f["detail"] for f in person["flags"]) or "-",
        person["standing"]["status"],
    ]


@app.command("annotators")
def annotators_cmd(
    project_name: Project,
    run: Annotated[
        bool,
        typer.Option(
            "--run", help="Run the reliability check now (flags; quarantines under policy auto)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Per person: labels, s/label, gold accuracy, estimated accuracy, confusion, flags, status."""
    from looplab.trust import annotators  # numpy, scipy: only when called
    from looplab.watch import trust_triggers

    with opened() as store:
        checked = None
        if run:
            with store.write() as session:
                project = projects.get_project(session, project_name)
                checked = trust_triggers.check(session, project, actor=actor())
        with store.read() as session:
            project = projects.get_project(session, project_name)
            found = annotators.report(session, project)
    if checked is not None:
        found["check"] = checked
    if as_json:
        emit_json(found)
        return
    table = Table(
        "user", "labels", "s/label", "gold [95% CI]", "est. accuracy", "worst confusion",
        "flags", "status",
    )  # fmt: skip
    for person in found["annotators"]:
        table.add_row(*_person_row(person))
    out.print(table)
    if checked is not None:
        err.print(
            f"reliability check ({checked['policy']}): flagged {checked['flagged'] or 'nobody'}, "
            f"quarantined {checked['quarantined'] or 'nobody'}; "
            f"agreement triggers fired: {checked['triggers'] or 'none'}"
        )


def _decide(project_name: str, user_name: str, reason: str, what: str, as_json: bool) -> None:
    from looplab.trust import standing

    act = {
        "quarantine": standing.quarantine,
        "release": standing.release,
        "confirm": standing.confirm,
    }[what]
    with opened() as store, store.write() as session:
        project = projects.get_project(session, project_name)
        user = access.get_user(session, user_name)
        result = act(session, project, user, reason=reason, actor=actor())
    if as_json:
        emit_json(result)
        return
    moved = result.get("annotations")
    out.print(
        f"{user_name} is {result['status']} in {project_name}"
        + (f": {moved:,} answers moved; a retrain is queued" if moved is not None else "")
    )


Reason = Annotated[str, typer.Option(help="Why (audited and shown).")]


@app.command("quarantine")
def quarantine(
    project_name: Project,
    user: str,
    reason: Reason,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Uphold a quarantine (the check's, or anyone's).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Keep a person's answers out of training (kept and shown); queues a retrain. Audited."""
    _decide(project_name, user, reason, "confirm" if confirm else "quarantine", as_json)


@app.command("release")
def release(
    project_name: Project,
    user: str,
    reason: Reason = "released by a reviewer",
    as_json: JsonOpt = False,
) -> None:
    """Bring a quarantined person's answers back into training; queues a retrain. Audited."""
    _decide(project_name, user, reason, "release", as_json)
