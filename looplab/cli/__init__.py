"""The command line (Typer): ``looplab ...``.

:mod:`looplab.cli.app` holds the app and the helpers every command shares (the store, output,
exit codes); the commands live in one module per area and register themselves on that app when
imported here, so ``looplab.cli:app`` (the console script) and ``python -m looplab.cli`` have
every command:

- :mod:`~looplab.cli.projects`: init, import, export, status, schema, config
- :mod:`~looplab.cli.users`: user add/list/token/revoke, audit verify
- :mod:`~looplab.cli.models`: train, models, gate, promote, rollback, card, report
- :mod:`~looplab.cli.watch`: drift, monitor, triggers
- :mod:`~looplab.cli.trust`: gold, agreement, annotators, quarantine, release
- :mod:`~looplab.cli.review`: quality (the label-error scan)
- :mod:`~looplab.cli.retention`: gc (remove versions retention does not keep)
- :mod:`~looplab.cli.run`: serve, worker
- :mod:`~looplab.cli.demo`: demo, simulate
"""

# isort: skip_file
# Importing a module registers its commands; `--help` lists them in this order.
from looplab.cli.app import app
from looplab.cli import projects, users, models, watch, trust, review, retention, run, demo  # noqa: F401

__all__ = ["app"]
