"""The ``looplab`` command line. Every command reads settings from ``LOOPLAB_*`` variables.

Errors a user can fix (bad input, unknown project, ...) print one clear message and exit 2;
nothing is half-written because every command's writes run in one transaction.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from looplab.core import audit, projects
from looplab.core.errors import LooplabError
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.govern import access

app = typer.Typer(
    help="looplab: human-in-the-loop machine learning in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
user_app = typer.Typer(help="Users and their tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")

# Piped output (a file, a pager, CI logs) is not squeezed into 80 columns: tables stay readable.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def opened() -> Iterator[Store]:
    """Open the workspace store (migrating it if needed) and turn domain errors into exit 2."""
    settings = Settings()
    store = Store.from_settings(settings)
    try:
        store.upgrade()
        yield store
    except LooplabError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        # Only what is known: an empty file has no line, a bad mapping no field.
        where = ", ".join(f"{k}={v}" for k, v in exc.details.items() if v not in (None, ""))
        if where:
            err.print(f"  [dim]{where}[/]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.dispose()


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


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
            labels=_csv(labels) or [],
            fields=_csv(fields),
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
                fields=_csv(fields),
                label=label,
                meta=_csv(meta),
                encoding=encoding,
                max_field_chars=limit,
                actor=actor(),
                progress=progress,
            )
        if as_json:
            emit_json(report.to_dict())
        else:
            data = report.to_dict()
            out.print(
                f"imported {data['imported']:,} records from {path.name} "
                f"({data['duplicates']:,} duplicates dropped, {data['labels']:,} labels) "
                f"in {data['seconds']:.1f} s"
            )


def raise_invalid(message: str) -> None:
    from looplab.core.errors import Invalid

    raise Invalid(message)


@app.command()
def export(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, csv, parquet or label-studio.")
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Export records with their labels and provenance."""
    from looplab.collect import export as exporter

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        if output is None:
            exporter.export(session, project, fmt, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with output.open("wb") as handle:
                exporter.export(session, project, fmt, handle)


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
        f"[bold]{data['project']}[/] ({data['task']}): {data['records']:,} records, "
        f"{data['labeled']:,} labeled, {data['unlabeled']:,} to go, "
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


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="annotator, reviewer or admin")] = "annotator",
    as_json: JsonOpt = False,
) -> None:
    """Create a user and print their token once (only its hash is stored)."""
    with opened() as store, store.write() as session:
        user, token = access.create_user(session, name, role, actor=actor())
    if as_json:
        emit_json({"name": user.name, "role": user.role, "token": token})
    else:
        err.print(f"created {user.role} [bold]{user.name}[/]; token (shown once):")
        sys.stdout.write(token + "\n")


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """List users and roles."""
    with opened() as store, store.read() as session:
        users = [
            {"name": u.name, "role": u.role, "active": u.active, "created_at": u.created_at}
            for u in access.list_users(session)
        ]
    if as_json:
        emit_json(users)
        return
    table = Table("name", "role", "active", "created")
    for u in users:
        table.add_row(str(u["name"]), str(u["role"]), str(u["active"]), str(u["created_at"])[:19])
    out.print(table)


@user_app.command("token")
def user_token(name: str) -> None:
    """Issue a new token for a user (the old one stops working)."""
    with opened() as store, store.write() as session:
        token = access.rotate_token(session, name, actor=actor())
    sys.stdout.write(token + "\n")


@user_app.command("revoke")
def user_revoke(name: str) -> None:
    """Revoke a user's token."""
    with opened() as store, store.write() as session:
        access.revoke(session, name, actor=actor())
    out.print(f"revoked {name}")


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Prove the audit log was not edited: exit 0 if the chain holds, 1 if not."""
    with opened() as store, store.read() as session:
        result = audit.verify(session)
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        out.print(f"[green]ok[/]: {result.events:,} events, chain intact; head {result.head}")
    else:
        err.print(
            f"[bold red]TAMPERED[/]: event {result.first_bad_id}: {result.reason} "
            f"({result.events:,} events checked)"
        )
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between polls of an empty queue.")] = 1.0,
) -> None:
    """Run jobs (training, pool scoring) from the store until interrupted.

    Run as many as you like, on any machine that reaches the store; `looplab serve` runs one
    inside the server unless LOOPLAB_RUN_WORKER=false.
    """
    import threading

    from looplab import worker as worker_module
    from looplab.core import jobs

    _log_to_stderr()
    settings = Settings()
    stop = threading.Event()
    with opened() as store:
        err.print(f"looplab worker {jobs.worker_name()} on {store.dialect}; Ctrl-C stops it")
        try:
            worker_module.run(store, settings, stop, poll_seconds=poll)
        except KeyboardInterrupt:
            stop.set()


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
        accuracy = "-" if result["accuracy"] is None else f"{result['accuracy']:.3f}"
        fitting = result["train_seconds"]
        out.print(
            f"trained {result['model']} on {result['n_train']:,} labels; held-out accuracy "
            f"{accuracy} on {result['n_test']:,}; calibration: "
            f"{result.get('calibration', 'none')} ({result['seconds']:.1f} s in all"
            + (
                f", of which training {fitting:.1f} s and re-scoring the pool the rest)"
                if fitting is not None
                else ")"
            )
        )
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


@app.command()
def models(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")], as_json: JsonOpt = False
) -> None:
    """Model versions: stage, held-out metrics, how many labels each saw.

    An ECE marked ``*`` is optimistic (:func:`looplab.govern.card.optimistic_calibration`); a
    footnote says why.
    """
    from looplab.govern import card
    from looplab.learn import registry

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        rows = [
            {
                "version": m.name,
                "stage": m.stage,
                "n_train": m.n_train,
                "n_test": m.n_test,
                "accuracy": m.metrics.get("accuracy"),
                "macro_f1": m.metrics.get("macro_f1"),
                "ece": m.metrics.get("ece"),
                "ece_optimistic": card.optimistic_calibration(m.config.get("calibration")),
                "calibration": (m.config.get("calibration") or {}).get("method", "none"),
                "train_label_counts": m.config.get("train_label_counts"),
                "sha256": m.sha256,
                "created_at": m.created_at,
            }
            for m in registry.list_versions(session, project)
        ]
    if as_json:
        emit_json(rows)
        return
    table = Table("version", "stage", "labels", "test", "accuracy", "macro-F1", "ECE")
    table.add_column("calibration")
    table.add_column("created")
    for r in rows:
        figures = [
            f"{r[k]:.3f}" if r[k] is not None else "-" for k in ("accuracy", "macro_f1", "ece")
        ]
        if r["ece_optimistic"] and r["ece"] is not None:
            figures[-1] += "*"
        table.add_row(
            str(r["version"]),
            str(r["stage"]),
            f"{r['n_train']:,}",
            f"{r['n_test']:,}",
            *figures,
            str(r["calibration"]),
            str(r["created_at"])[:16],
        )
    out.print(table)
    if any(r["ece_optimistic"] and r["ece"] is not None for r in rows):
        out.print(card.OPTIMISTIC_NOTE, highlight=False)


def _print_gate(data: dict[str, Any]) -> None:
    what = f"replace {data['production']}" if data["production"] else "go to production"
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


@app.command()
def demo(
    serve_too: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server.")] = True,
) -> None:
    """Set up the BBC News demo project (2,225 articles) and start the server."""
    from looplab.cli import demo as demo_data
    from looplab.collect import ingest
    from looplab.core import jobs

    settings = Settings()
    with opened() as store:
        with store.write() as session:
            exists = any(p.name == "news" for p in projects.list_projects(session))
        if not exists:
            path = settings.home / "demo" / "bbcnews.csv"
            count = demo_data.write_bbc_csv(path)
            with store.write() as session:
                project = projects.create_project(
                    session,
                    "news",
                    task="text",
                    labels=demo_data.LABELS,
                    actor=actor(),
                    guidelines="Pick the article's main topic. Sport includes all sports news.",
                )
                report = ingest.import_file(
                    session,
                    project,
                    path,
                    text="text",
                    label="label",
                    meta=["topic", "source"],
                    actor=actor(),
                )
                jobs.enqueue(session, "score", project_id=project.id)
                train_params = {"actor": actor(), "skip_identical": True}
                jobs.enqueue(session, "train", project_id=project.id, params=train_params)
            err.print(
                f"imported {report.imported:,} of {count:,} BBC News articles into 'news',"
                f" {report.labels:,} with their topic as a label; the worker trains v1 from"
                " those now (then: `looplab gate news v1` and `looplab promote news v1`)"
            )
        tokens = {}
        with store.write() as session:
            existing = {u.name for u in access.list_users(session)}
            for name, role in (("admin", "admin"), ("annotator", "annotator")):
                if name in existing:
                    tokens[name] = access.rotate_token(session, name, actor=actor())
                else:
                    tokens[name] = access.create_user(session, name, role, actor=actor())[1]
    url = f"http://{settings.host}:{settings.port}"
    out.print(f"\n[bold]looplab demo[/]: open {url} and sign in with a token")
    out.print(f"  annotator token: {tokens['annotator']}")
    out.print(f"  admin token:     {tokens['admin']}")
    out.print(f"  API docs:        {url}/docs\n")
    if serve_too:
        serve(host=None, port=None, workers=1)


@app.command()
def simulate(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    oracle_column: Annotated[
        str | None,
        typer.Option(
            help="Metadata column holding the true label (default: the labels imported with"
            " --label)."
        ),
    ] = None,
    strategy: Annotated[
        list[str],
        typer.Option(
            help="Strategy to compare with random (repeatable), e.g. margin, "
            "entropy, margin+diversity."
        ),
    ] = ["margin"],  # noqa: B006 (typer reads the default; it is never mutated)
    budget: Annotated[int, typer.Option(help="Labels to spend per run.")] = 500,
    seeds: Annotated[int, typer.Option(help="Runs per strategy, same seeds for all.")] = 5,
    batch: Annotated[int, typer.Option(help="Labels per round between retrains.")] = 10,
    initial: Annotated[int, typer.Option(help="Random seed labels before the strategy.")] = 20,
    random_draws: Annotated[
        int,
        typer.Option(
            min=1, help="Random-baseline runs per seed, averaged (a single one is noisy)."
        ),
    ] = 1,
    plot: Annotated[Path, typer.Option(help="Where to write the PNG learning curve.")] = Path(
        "learning-curve.png"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Replay the labeling loop with the true labels: does the strategy beat random here?

    The true labels are the metadata column ``--oracle-column`` or, without it, the labels the
    project's imports brought. Ends with one verdict per strategy and a paired test over seeds.
    """
    from looplab.ask import simulate as sim

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        oracle = sim.load_oracle(session, project, oracle_column)
        fields, task = list(project.fields), project.task
        estimator = projects.setting(project, "estimator")
    payloads, truth = oracle.payloads, oracle.truth
    if len(truth) < initial + 2 * batch:
        raise_exit(
            f"only {len(truth)} records have a true label ({oracle.source}); the simulation"
            f" needs at least {initial + 2 * batch} (--initial plus two batches)"
        )
    if budget > 0.75 * len(truth):
        raise_exit(
            f"budget {budget} exceeds the pool: at most {int(0.75 * len(truth))} "
            "(a quarter of the records is held out to measure accuracy)"
        )
    try:
        for spec in strategy:
            sim.parse_strategy(spec)
    except ValueError as exc:
        raise_exit(str(exc))
    features, make_model = sim.precompute_features(task, fields, payloads, estimator)
    with err.status(f"simulating {len(strategy) + 1} strategies x {seeds} seeds..."):
        comparison = sim.compare(
            features,
            truth,
            make_model=make_model,
            strategies=strategy,
            seeds=seeds,
            budget=budget,
            batch_size=batch,
            initial=initial,
            features_for_diversity=features,
            random_draws=random_draws,
            n_jobs=2,
        )
    sim.plot_curves(comparison, plot, title=f"{project_name}: {', '.join(strategy)} vs random")
    verdicts = [sim.verdict(comparison, name) for name in comparison.summaries if name != "random"]
    if as_json:
        emit_json(
            {
                "oracle": oracle.source,
                "records": len(truth),
                "budget": budget,
                "batch": batch,
                "seeds": comparison.seeds,
                "random_draws": random_draws,
                "full_pool_accuracy": comparison.full_accuracy,
                "plot": str(plot),
                "strategies": {
                    name: dataclasses.asdict(s) for name, s in comparison.summaries.items()
                },
                "verdicts": {v.strategy: dataclasses.asdict(v) for v in verdicts},
            }
        )
        return
    out.print(f"oracle: {oracle.source}, {len(truth):,} records", highlight=False)
    out.print(sim.format_table(comparison), highlight=False)
    for v in verdicts:
        out.print(v.text, highlight=False)
    err.print(f"learning curve: {plot}")


def _log_to_stderr() -> None:
    """Long-running commands (serve, worker) say what their jobs did: one line per job."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("looplab")  # ours only: alembic and others stay quiet
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def raise_exit(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int, typer.Option(help="HTTP worker processes.")] = 1,
) -> None:
    """Run the HTTP API, the web UI and (by default) a job worker."""
    import uvicorn

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    err.print(f"looplab on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    _log_to_stderr()
    if workers > 1:
        uvicorn.run(
            "looplab.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        from looplab.api import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    app()
