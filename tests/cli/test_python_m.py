"""``python -m looplab.cli`` has every command the ``looplab`` script has (issue 17).

The script runs ``looplab.cli:app``; ``python -m`` runs ``looplab/cli/__main__.py``, which once
built its own app and lost the commands registered on the imported module's. Each check runs a
fresh interpreter, as a user does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import typer
import typer.main

from looplab.cli import app


def script_commands() -> dict[str, list[str]]:
    """Every command of ``looplab`` (the console script's app), with a group's subcommands."""
    # Typer carries its own click (typer._click): reach it through the command, not `import click`.
    group: Any = typer.main.get_command(app)
    ctx = group.context_class(group)
    out: dict[str, list[str]] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        lister = getattr(command, "list_commands", None)
        out[name] = list(lister(command.context_class(command))) if lister else []
    return out


def module(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "looplab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb"},
    )


def listed(help_text: str) -> list[str]:
    """Command names in a rich ``--help`` box (``│ name   description │``)."""
    box = help_text.split("Commands", 1)[1]
    return re.findall(r"^│ (\S+)\s{2,}", box, flags=re.MULTILINE)


def test_python_m_lists_the_same_commands_as_the_script() -> None:
    expected = script_commands()
    top = module("--help")
    stdout, stderr = top.communicate(timeout=120)
    assert top.returncode == 0, stderr
    assert sorted(listed(stdout)) == sorted(expected)
    assert {"monitor", "drift", "triggers", "import", "train"} <= set(expected)


def test_python_m_every_command_answers_help() -> None:
    calls = [(name,) for name in script_commands()] + [
        (name, sub) for name, subs in script_commands().items() for sub in subs
    ]
    # All at once: each interpreter spends most of its time importing.
    running = [(call, module(*call, "--help")) for call in calls]
    for call, process in running:
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, f"python -m looplab.cli {' '.join(call)} --help: {stderr}"
        assert "No such command" not in stdout + stderr
        assert f"python -m looplab.cli {' '.join(call)}" in " ".join(stdout.split())
