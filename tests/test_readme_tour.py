"""The README's five-minute tour runs as written: its bash block, line for line, under bash.

Only what must differ on a test machine is replaced: the workspace (a fresh folder, not
``/tmp/tour``), the port (a free one, not 8000), the venv (this interpreter's) and the folder the
example files are read from (the repository's, as the tour runs in a scratch folder so its
``report.html`` and ``tasks.json`` land there). If the README and the code part ways, this fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tour_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A five-minute tour") :]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the tour has no bash block"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    script = tour_block()
    port = free_port()
    replacements = {
        "source .venv/bin/activate": f"source {Path(sys.executable).parent}/activate",
        "/tmp/tour": str(tmp_path / "tour"),
        "127.0.0.1:8000": f"127.0.0.1:{port}",
        "examples/tour/": f"{ROOT}/examples/tour/",
    }
    for old, new in replacements.items():
        assert old in script, f"the tour no longer says {old!r}: update this test"
        script = script.replace(old, new)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLAB_")}
    env["LOOPLAB_PORT"] = str(port)
    work = tmp_path / "cwd"
    work.mkdir()
    proc = subprocess.Popen(
        ["bash", "-c", "set -eo pipefail\n" + script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the background server is in the group we stop below
    )
    try:
        output, _ = proc.communicate(timeout=900)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    assert proc.returncode == 0, output[-4000:]
    for expected in (
        "imported 150 records from articles.csv",
        "imported 250 records from labeled.jsonl",
        "records from loans.parquet",
        "PASS: v1 may go to production",
        "v1 is in production",
        '"label":',  # the prediction
        "chain intact",
        "oracle: imported labels (column 'topic'), 250 records",
        "on this data, margin ",
    ):
        assert expected in output, f"{expected!r} not in the tour's output:\n{output[-4000:]}"
    assert (work / "report.html").stat().st_size > 0
    assert (work / "tasks.json").read_text().startswith("[")
