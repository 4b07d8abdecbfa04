"""``looplab init``, ``import``, ``export``, ``status``, ``schema``, ``config``: projects, data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
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
from looplab.core.settings import Settings


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="Project name, e.g. news.")],
    task: Annotated[str, typer.Option(help="text or tabular")] = "text",
    labels: Annotated[str, typer.Option(help="Comma-separated label set.")] = "",
    fields: Annotated[str | None, typer.Option(help="Input fields (tabular).")] = None,
    guidelines: Annotated[str, typer.Option(help="Guidelines shown to annotators.")] = "",
) -> None:
    """Create a project (and the workspace, if this is the first)."""
    with opened() as store, store.write() as session:
        project = projects.create_project(
            session,
            name,
            task=task,
            labels=split_csv(labels) or [],
            fields=split_csv(fields),
            guidelines=guidelines,
            actor=actor(),
        )
        out.print(
            f"created project [bold]{project.name}[/] ({project.task}; labels: "
            f"{', '.join(project.labels)}) in {Settings().home}"
        )


@app.command("import")
def import_(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    path: Annotated[Path, typer.Argument(help="CSV, JSONL, Parquet or Label Studio JSON file.")],
    text: Annotated[str | None, typer.Option(help="Column holding the text (text tasks).")] = None,
    fields: Annotated[str | None, typer.Option(help="Input columns (tabular tasks).")] = None,
    label: Annotated[str | None, typer.Option(help="Column of known labels.")] = None,
    meta: Annotated[str | None, typer.Option(help="Columns kept as metadata.")] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Column naming each row's record: same id = same record (rows counted), "
            "different ids stay apart. Default: the project's dedupe setting.",
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl, parquet or label-studio.")
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV/JSONL.")] = "utf-8",
    max_field_chars: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Longest value kept, in characters (default: LOOPLAB_MAX_FIELD_CHARS, 1,000,000).",
        ),
    ] = None,
    from_name: Annotated[
        str | None,
        typer.Option(
            "--from-name",
            help="Label Studio: the control whose answers to import (default: the only Choices"
            " control); other controls' results are then left out and counted.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import records, all or nothing: a bad row aborts the import and writes nothing."""
    from looplab.collect import ingest

    limit = max_field_chars or Settings().max_field_chars
    with opened() as store:
        if not path.exists():
            raise_invalid(f"{path}: no such file")
        with (
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
                disable=as_json,
            ) as bar,
            store.write() as session,
        ):
            task_id = bar.add_task(f"importing {path.name}", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task_id, completed=done, total=total)

            project = projects.get_project(session, project_name)
            report = ingest.import_file(
                session,
                project,
                path,
                fmt=fmt,
                text=text,
                fields=split_csv(fields),
                label=label,
                meta=split_csv(meta),
                id_column=id_column,
                encoding=encoding,
                max_field_chars=limit,
                actor=actor(),
                progress=progress,
                from_name=from_name,
            )
        store.checkpoint()  # a whole file in one transaction: shrink SQLite's WAL back
        if as_json:
            emit_json(report.to_dict())
        else:
            out.print(
                f"imported {report.imported:,} records from {path.name} in"
                f" {report.seconds:.1f} s: {report.summary()}",
                highlight=False,
            )
            _print_extras(project_name, report)


def _print_extras(project_name: str, report: Any) -> None:
    """After the counts: the column types (tabular), what a Label Studio file brought."""
    if report.schema:
        print_schema(project_name, report.schema, report.warnings)
    if report.labelstudio is not None:
        _print_label_studio(report.labelstudio)


def print_schema(project_name: str, schema: dict[str, Any], warnings: list[str]) -> None:
    """The column types as a table: what the model will read, and why."""
    table = Table(title=f"column types of {project_name}", title_justify="left")
    for column in ("field", "type", "missing", "distinct", "did not parse", "note"):
        table.add_column(column, justify="right" if column in ("missing", "distinct") else "left")
    for f in schema["fields"]:
        kind = f["type"] + (f" ({f['format']})" if f.get("format") else "")
        if f.get("inferred") and f["inferred"] != f["type"]:
            kind += f" (override; inferred {f['inferred']})"
        tokens = ", ".join(f"{t!r} x{n}" for t, n in (f.get("unparsed") or {}).items())
        table.add_row(
            *(
                escape(cell)  # tokens and names are data: "[x]" is not rich markup
                for cell in (
                    f["name"],
                    kind,
                    # A field nobody profiled (a text project's) has no counts to show.
                    f"{f['missing']:,}" if f.get("rows") else "-",
                    f"{f['distinct']:,}" if f.get("rows") else "-",
                    tokens,
                    f.get("note", ""),
                )
            )
        )
    out.print(table)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _print_label_studio(summary: dict[str, Any]) -> None:
    """What a Label Studio import kept, and what it could not (nothing is left out silently)."""
    out.print(
        f"Label Studio {summary['format']}: {summary['tasks']:,} tasks, control"
        f" {summary['from_name']!r}; {summary['answers']:,} answers,"
        f" {summary['cancelled']:,} cancelled (kept as skips),"
        f" {summary['already_imported']:,} already imported"
    )
    for name, count in summary["annotators"].items():
        out.print(f"  annotator {name}: {count:,} answers")
    if summary["placeholder_users"]:
        out.print(
            "  placeholder users created (inactive; `looplab user token NAME` activates one): "
            + ", ".join(summary["placeholder_users"])
        )
    for version, count in summary["predictions"].items():
        out.print(f"  predictions of {version}: {count:,} kept with their scores")
    for version, count in summary["predictions_not_held"].items():
        out.print(f"  [yellow]predictions of {version}: {count:,} not held (not one choice)[/]")
    for control, count in summary["left_out"].items():
        out.print(f"  [yellow]left out: {count:,} results of {control}[/]")
    if summary["skipped_empty"]:
        out.print(f"  {summary['skipped_empty']:,} answers with no choice (kept as skips)")
    if summary["answers_without_id"]:
        out.print(
            f"  [yellow]{summary['answers_without_id']:,} answers have no id: importing the"
            " file again would add them again[/]"
        )
    for merged in summary["merged"]:
        differs = ", ".join(merged["meta_differs"]) or "none"
        out.print(
            f"  task {merged['task']} merged into record {merged['record']} (task"
            f" {merged['kept_task']}, same input); meta that differs: {differs}"
        )
    if summary["merged_tasks"] > len(summary["merged"]):
        out.print(f"  ... {summary['merged_tasks'] - len(summary['merged']):,} more merged tasks")


@app.command()
def export(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, csv, parquet or label-studio.")
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    from_name: Annotated[
        str | None,
        typer.Option(
            "--from-name",
            help="label-studio: the Choices control's name (default: the one the project's last"
            " Label Studio import used, else 'label').",
        ),
    ] = None,
    to_name: Annotated[
        str | None,
        typer.Option("--to-name", help="label-studio: the labeled object's name (default: same)."),
    ] = None,
    text_key: Annotated[
        str | None,
        typer.Option("--text-key", help="label-studio: the data key of the text (default: same)."),
    ] = None,
) -> None:
    """Export records with their labels and provenance."""
    from looplab.collect import export as exporter

    notes: list[str] = []
    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        names = None
        if fmt == "label-studio":
            names = exporter.ls_names(
                session, project, from_name=from_name, to_name=to_name, text_key=text_key
            )
        elif from_name or to_name or text_key:
            raise_invalid("--from-name, --to-name and --text-key are for --format label-studio")
        if output is None:
            exporter.export(session, project, fmt, sys.stdout.buffer, names=names, notes=notes)
            sys.stdout.buffer.flush()
        else:
            with output.open("wb") as handle:
                exporter.export(session, project, fmt, handle, names=names, notes=notes)
    if names is not None:
        err.print(
            f"Label Studio names: control {names.from_name!r}, object {names.to_name!r}, text key"
            f" {names.text_key!r} (match them in the Label Studio project's labeling config)"
        )
    for note in notes:
        err.print(f"[yellow]note[/]: {note}")


@app.command()
def status(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")], as_json: JsonOpt = False
) -> None:
    """Counts: records, labeled, per label, per annotator."""
    with opened() as store, store.read() as session:
        data = projects.status(session, projects.get_project(session, project_name))
    if as_json:
        emit_json(data)
        return
    out.print(
        f"[bold]{data['project']}[/] ({data['task']}): {data['records']:,} records"
        + (f" standing for {data['rows']:,} rows, " if data["rows"] > data["records"] else ", ")
        + f"{data['labeled']:,} labeled, {data['unlabeled']:,} to go, "
        f"{data['quarantined']:,} quarantined annotations"
    )
    for title, counts in (
        ("label", data["per_label"]),
        ("annotator", data["per_annotator"]),
        ("origin", data["per_origin"]),
    ):
        table = Table(title=f"per {title}", title_justify="left")
        table.add_column(title)
        table.add_column("annotations", justify="right")
        for key, count in counts.items():
            table.add_row(str(key), f"{count:,}")
        out.print(table)


@app.command()
def schema(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    changes: Annotated[
        list[str] | None,
        typer.Argument(help="field=type overrides, e.g. age=numeric zip=categorical"),
    ] = None,
    infer: Annotated[
        bool, typer.Option("--infer", help="Infer the types again from every record first.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show or override the column types training and serving read (numeric, categorical, ...)."""
    from looplab.collect import schema as types

    with opened() as store, store.write() as session:
        parsed: dict[str, str] = {}
        for change in changes or []:
            key, sep, kind = change.partition("=")
            if not sep or not key.strip():
                raise_invalid(
                    f"expected field=type, got {change!r}; types: {', '.join(types.TYPES)}"
                )
            parsed[key.strip()] = kind.strip()
        project = projects.get_project(session, project_name)
        current = types.of_project(project)
        if parsed or infer or current is None:
            current = types.set_types(session, project, parsed, actor=actor(), infer_again=infer)
        data = {
            "project": project.name,
            **current.to_dict(),
            "warnings": current.warnings(project.name),
        }
    if as_json:
        emit_json(data)
    else:
        print_schema(project_name, data, data["warnings"])


@app.command()
def config(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    changes: Annotated[
        list[str] | None, typer.Argument(help="key=value pairs, e.g. retrain_every=100")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or change project settings (overlap, retrain_every, strategy, estimator, ...)."""
    parsed: dict[str, Any] = {}
    for change in changes or []:
        key, sep, raw = change.partition("=")
        if not sep:
            raise_invalid(f"expected key=value, got {change!r}")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw  # a bare string such as a dotted estimator path
    from looplab import configure

    with opened() as store, store.write() as session:
        project = projects.get_project(session, project_name)
        if parsed:
            configure.update_settings(session, project, parsed, actor=actor())
        current = {**projects.DEFAULT_SETTINGS, **project.settings}
    if as_json:
        emit_json(current)
    else:
        for key, value in current.items():
            out.print(f"{key} = {json.dumps(value)}")
