"""The command line (Typer): ``looplab ...``.

:mod:`looplab.cli.app` holds the app, its shared helpers and most commands; the watch commands
(drift, monitor, triggers) live in :mod:`looplab.cli.watch` and register themselves on the app
when imported here, so ``looplab.cli:app`` (the console script) has every command.
"""

from looplab.cli import watch as _watch  # noqa: F401  (registers its commands)
from looplab.cli.app import app

__all__ = ["app"]
