"""Import as an upload that runs as a job, export as a download: the CLI's behaviour over HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from looplab.cli.app import app as cli
from looplab.collect import export, imports, ingest
from looplab.core import jobs, projects
from looplab.core.tables import Annotation, AuditEvent, ImportBatch, Job, Record
from tests.api.conftest import Api

ROWS = [
    ("Shares rose after the results", "business", "wire"),
    ("The striker scored twice", "sport", "paper"),
    ("A new chip for phones", "tech", "blog"),
    ("Markets fell on Monday", "", "wire"),
    ("Shares rose after the results", "business", "wire"),  # a duplicate
]
CSV = "text,topic,source\n" + "".join(f'"{t}",{label},{s}\n' for t, label, s in ROWS)
BAD_CSV = 'text,topic,source\n"fine",sport,a\n"not fine",nope,b\n'


def create(api: Api, name: str = "news") -> None:
    body = {"name": name, "task": "text", "labels": ["business", "sport", "tech"]}
    response = api.client.post("/api/v1/projects", json=body, headers=api.as_("admin"))
    assert response.status_code == 201, response.text


def upload(api: Api, data: bytes, filename: str = "articles.csv", **params: str) -> Any:
    query = {"filename": filename, "text": "text", "label": "topic", "meta": "source", **params}
    headers = {**api.as_("admin"), "Content-Type": "application/octet-stream"}
    return api.client.post(
        "/api/v1/projects/news/imports", params=query, content=data, headers=headers
    )


def run_jobs(api: Api) -> None:
    """Run queued jobs; the ``score`` job an import queues is skipped (it is tested elsewhere)."""
    handlers: dict[str, jobs.Handler] = {"import": imports.run_import, "score": lambda *_: {}}
    jobs.drain(api.store, api.client.app.state.settings, handlers=handlers)  # type: ignore[attr-defined]


def job(api: Api, job_id: int) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/jobs/{job_id}", headers=api.as_("admin"))
    assert response.status_code == 200, response.text
    return dict(response.json())


def counts(api: Api) -> dict[str, int]:
    with api.store.read() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Record, Annotation, ImportBatch)
        }


def test_an_upload_imports_as_a_job(api: Api) -> None:
    create(api)
    queued = upload(api, CSV.encode())
    assert queued.status_code == 202, queued.text
    body = queued.json()
    assert (body["kind"], body["status"], body["project"]) == ("import", "queued", "news")
    run_jobs(api)
    done = job(api, body["id"])
    assert done["status"] == "done" and done["error"] is None
    result = done["result"]
    assert (result["file"], result["rows"], result["imported"], result["duplicates"]) == (
        "articles.csv",
        5,
        4,
        1,
    )
    assert result["labels"] == 4  # labeled rows: the duplicate's label counts too (issue 17)
    assert done["progress"]["rows"] == 5
    with api.store.read() as session:
        records = session.scalars(select(Record).order_by(Record.id)).all()
        assert [r.payload["text"] for r in records] == [t for t, _, _ in ROWS[:4]]
        assert [r.meta["source"] for r in records] == ["wire", "paper", "blog", "wire"]
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions[-2:] == ["records.upload", "records.import"]
        kinds = session.scalars(select(Job.kind).where(Job.status == "done")).all()
        assert "score" in kinds  # the new pool is ranked for the queue


def test_progress_is_readable_while_the_import_runs(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 2 rows: import_file reports after every one, and each time GET /jobs/{id} is
    # asked what it sees, from outside the import's transaction.
    from looplab.core import progress

    monkeypatch.setattr(ingest, "BATCH_ROWS", 2)
    create(api)
    job_id = upload(api, CSV.encode()).json()["id"]
    seen: list[tuple[str, int]] = []
    report = progress.report

    def report_and_look(store: Any, running: Job, figures: dict[str, Any]) -> None:
        report(store, running, figures)
        now = job(api, job_id)
        seen.append((now["status"], now["progress"]["rows"]))

    monkeypatch.setattr(progress, "report", report_and_look)
    run_jobs(api)
    assert seen[:3] == [("running", 0), ("running", 2), ("running", 4)]
    assert job(api, job_id)["progress"]["rows"] == 5


def test_a_bad_upload_fails_like_the_cli_and_writes_nothing(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(api)
    assert upload(api, CSV.encode()).status_code == 202
    run_jobs(api)
    before = counts(api)
    queued = upload(api, BAD_CSV.encode(), filename="bad.csv")
    assert queued.status_code == 202
    run_jobs(api)
    failed = job(api, queued.json()["id"])
    message = (
        "bad.csv: line 3, field 'topic': unknown label 'nope'; valid labels: business, sport, tech"
    )
    assert failed["status"] == "failed"
    assert failed["error"] == message
    assert failed["error_code"] == "invalid"
    assert failed["error_details"] == {"file": "bad.csv", "line": 3, "field": "topic"}
    assert failed["result"] is None
    assert counts(api) == before
    uploads = tmp_path / "uploads"
    assert len(list(uploads.iterdir())) == 1  # the good file stays (provenance); the bad is gone

    # The CLI, on the same store and the same file, prints the same message and exit 2.
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLAB_DATABASE_URL", api.store.url)
    args = ["import", "news", "bad.csv", "--text", "text", "--label", "topic", "--meta", "source"]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 2
    assert f"error: {message}" in outcome.stderr.splitlines()
    assert counts(api) == before


def test_uploads_refused_before_any_work(api: Api, tmp_path: Path) -> None:
    create(api)
    wrong_mapping = upload(api, CSV.encode(), fields="a,b")
    assert wrong_mapping.status_code == 422
    assert wrong_mapping.json()["error"]["message"] == (
        "articles.csv: field 'fields': project 'news' is a text project: name the text column"
        " with --text, not --fields"
    )
    no_format = upload(api, CSV.encode(), filename="articles.txt")
    assert no_format.status_code == 422 and "cannot tell the format" in no_format.text
    settings = api.client.app.state.settings  # type: ignore[attr-defined]
    settings.upload_max_bytes = 20
    too_big = upload(api, CSV.encode())
    assert too_big.status_code == 413
    assert too_big.json()["error"] == {
        "code": "too_large",
        "message": f"the file is {len(CSV.encode()):,} bytes; the limit is 20"
        " (LOOPLAB_UPLOAD_MAX_BYTES)",
        "details": {"limit": 20},
    }
    headers = {**api.as_("reviewer"), "Content-Type": "application/octet-stream"}
    forbidden = api.client.post(
        "/api/v1/projects/news/imports?filename=a.csv", content=b"text\nx\n", headers=headers
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["details"]["action"] == "project.import"
    missing = api.client.post(
        "/api/v1/projects/nope/imports?filename=a.csv",
        content=b"text\nx\n",
        headers={**api.as_("admin"), "Content-Type": "application/octet-stream"},
    )
    assert missing.status_code == 404
    assert list((tmp_path / "uploads").iterdir()) == []  # every refused file was removed
    with api.store.read() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_export_streams_what_the_cli_writes(api: Api, fmt: str) -> None:
    create(api)
    upload(api, CSV.encode())
    run_jobs(api)
    response = api.client.get(
        "/api/v1/projects/news/export", params={"format": fmt}, headers=api.as_("reviewer")
    )
    assert response.status_code == 200
    expected = io.BytesIO()
    with api.store.read() as session:
        export.export(session, projects.get_project(session, "news"), fmt, expected)
    assert response.content == expected.getvalue()
    suffix = {"label-studio": "label-studio.json"}.get(fmt, fmt)
    assert response.headers["content-disposition"] == f'attachment; filename="news.{suffix}"'
    if fmt == "jsonl":
        rows = [json.loads(line) for line in response.text.splitlines()]
        assert [r["label"] for r in rows] == ["business", "sport", "tech", None]


def test_export_refusals(api: Api) -> None:
    create(api)
    url = "/api/v1/projects/news/export"
    bad = api.client.get(url, params={"format": "xml"}, headers=api.as_("admin"))
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == (
        "unknown export format 'xml'; valid: jsonl, csv, parquet, label-studio"
    )
    assert api.client.get(url, headers=api.as_("annotator")).status_code == 403
    assert api.client.get("/api/v1/projects/x/export", headers=api.as_("admin")).status_code == 404


def test_jobs_route_refusals(api: Api) -> None:
    assert api.client.get("/api/v1/jobs/999", headers=api.as_("admin")).status_code == 404
    assert api.client.get("/api/v1/jobs/1", headers=api.as_("reviewer")).status_code == 403
    assert api.client.get("/api/v1/jobs/1").status_code == 401


def test_a_label_studio_upload_takes_from_name(api: Api) -> None:
    """Label Studio's own export (two Choices controls) over HTTP: the control is chosen with
    ``from_name`` as ``looplab import --from-name`` chooses it, and the job's result says what
    was left out."""
    body = {"name": "news", "task": "text", "labels": ["business", "tech", "positive", "negative"]}
    assert (
        api.client.post("/api/v1/projects", json=body, headers=api.as_("admin")).status_code == 201
    )
    data = (Path(__file__).parents[1] / "data" / "labelstudio" / "two_controls.json").read_bytes()
    headers = {**api.as_("admin"), "Content-Type": "application/octet-stream"}
    finished = []
    for params in ({}, {"from_name": "sentiment"}):
        queued = api.client.post(
            "/api/v1/projects/news/imports",
            params={"filename": "export.json", **params},
            content=data,
            headers=headers,
        )
        assert queued.status_code == 202, queued.text
        run_jobs(api)
        finished.append(job(api, queued.json()["id"]))
    failed, done = finished
    assert failed["status"] == "failed" and "pick one with --from-name" in failed["error"]
    assert done["status"] == "done", done
    summary = done["result"]["labelstudio"]
    assert (summary["from_name"], summary["answers"]) == ("sentiment", 3)
    assert summary["left_out"] == {"topic (choices)": 3}
