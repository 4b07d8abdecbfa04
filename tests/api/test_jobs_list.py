"""GET /api/v1/projects/{p}/jobs: a project's jobs, newest first, for admins."""

from __future__ import annotations

from looplab.core import jobs, projects
from tests.api.conftest import Api


def test_admins_list_a_projects_jobs_newest_first(news: Api) -> None:
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        ids = [jobs.enqueue(session, k, project_id=project.id).id for k in ("score", "train")]
    with news.store.write() as session:
        assert jobs.claim(session, "w1", kinds={"score"}) is not None
    answer = news.client.get("/api/v1/projects/news/jobs", headers=news.as_("admin"))
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert [r["id"] for r in rows] == ids[::-1]
    assert rows[1]["worker"] == "w1" and rows[1]["status"] == "running"
    queued = news.client.get(
        "/api/v1/projects/news/jobs?status=queued&limit=1", headers=news.as_("admin")
    ).json()
    assert [r["kind"] for r in queued] == ["train"]
    for path, who, code in [
        ("/api/v1/projects/news/jobs", "annotator", 403),
        ("/api/v1/projects/nope/jobs", "admin", 404),
        ("/api/v1/projects/news/jobs?status=stuck", "admin", 422),
        ("/api/v1/projects/news/jobs?limit=0", "admin", 422),
    ]:
        assert news.client.get(path, headers=news.as_(who)).status_code == code, path
