"""The README's Trust example runs as written and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_trust_example_prints_what_the_readme_shows() -> None:
    section = README.read_text(encoding="utf-8").split("## Trust", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"```text\n(.*?)```", section, re.S)
    assert code and shown, "the Trust section lost its example or its output"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md#trust", "exec"), {})
    assert out.getvalue() == shown.group(1)
