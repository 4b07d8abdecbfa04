"""The ``looplab`` app and what every command shares: the store, output, exit codes.

Every command reads settings from ``LOOPLAB_*`` variables; the commands live in one module per
area (see :mod:`looplab.cli`).

Errors a user can fix (bad input, unknown project, ...) print one clear message and exit 2;
nothing is half-written because every command's writes run in one transaction.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from looplab.core.errors import LooplabError
from looplab.core.settings import Settings
from looplab.core.store import Store

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


def split_csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def raise_invalid(message: str) -> None:
    from looplab.core.errors import Invalid

    raise Invalid(message)


def raise_exit(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


if __name__ == "__main__":
    app()
