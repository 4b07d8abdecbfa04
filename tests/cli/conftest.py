"""What the CLI tests share: a workspace of their own, and running a command in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from looplab.cli import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite workspace for the test's commands (no PostgreSQL URL leaks in)."""
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("LOOPLAB_DATABASE_URL", raising=False)
    return tmp_path / "ws"


def run(*args: str) -> tuple[int, str, str]:
    """``looplab ARGS...`` in this process: ``(exit code, stdout, stderr)``."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr
