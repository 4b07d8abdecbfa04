"""Projects over HTTP: create, conflicts, bad input, settings, status."""

from __future__ import annotations

from tests.api.conftest import Api


def test_create_and_read_a_project(api: Api) -> None:
    body = {"name": "news", "task": "text", "labels": ["business", "sport"]}
    created = api.client.post("/api/v1/projects", json=body, headers=api.as_("admin"))
    assert created.status_code == 201
    assert created.json()["fields"] == ["text"]
    got = api.client.get("/api/v1/projects/news", headers=api.as_("annotator"))
    assert got.status_code == 200 and got.json()["labels"] == ["business", "sport"]


def test_duplicate_project_is_409(api: Api) -> None:
    body = {"name": "news", "task": "text", "labels": ["a", "b"]}
    api.client.post("/api/v1/projects", json=body, headers=api.as_("admin"))
    again = api.client.post("/api/v1/projects", json=body, headers=api.as_("admin"))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_unknown_project_is_404(api: Api) -> None:
    response = api.client.get("/api/v1/projects/nope", headers=api.as_("admin"))
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "no project named 'nope'; there is no project yet: create one with "
        "`looplab init`",
        "details": {"project": "nope"},
    }


def test_bad_body_names_the_field(api: Api) -> None:
    body = {"name": "news", "task": "video", "labels": ["a", "b"], "colour": 1}
    response = api.client.post("/api/v1/projects", json=body, headers=api.as_("admin"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    fields = {p["field"] for p in error["details"]["problems"]}
    assert fields == {"task", "colour"}


def test_invalid_name_and_duplicate_labels_are_422(api: Api) -> None:
    bad_name = {"name": "News Room", "task": "text", "labels": ["a", "b"]}
    response = api.client.post("/api/v1/projects", json=bad_name, headers=api.as_("admin"))
    assert (
        response.status_code == 422
        and "invalid project name" in response.json()["error"]["message"]
    )
    dup = {"name": "n", "task": "text", "labels": ["a", "a"]}
    response = api.client.post("/api/v1/projects", json=dup, headers=api.as_("admin"))
    assert (
        response.status_code == 422
        and response.json()["error"]["message"] == "labels must be unique"
    )


def test_settings_patch(news: Api) -> None:
    url = "/api/v1/projects/news/settings"
    ok = news.client.patch(url, json={"show_suggestions": False}, headers=news.as_("admin"))
    assert ok.status_code == 200 and ok.json()["settings"]["show_suggestions"] is False
    assert news.client.patch(url, json={"typo": 1}, headers=news.as_("admin")).status_code == 422
    assert (
        news.client.patch(url, json={"overlap": 2}, headers=news.as_("annotator")).status_code
        == 403
    )


def test_a_gate_pair_that_cannot_work_is_422(news: Api) -> None:
    url, admin = "/api/v1/projects/news/settings", news.as_("admin")
    assert news.client.patch(url, json={"gate_test": "mcnemar"}, headers=admin).status_code == 200
    response = news.client.patch(url, json={"gate_metric": "macro_f1"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "gate_metric=macro_f1 cannot be gated with gate_test=mcnemar (the project's "
        "gate_test): McNemar's test compares accuracy (which records each model gets right), "
        "not macro_f1. Use gate_test=bootstrap with gate_metric=macro_f1, or "
        "gate_metric=accuracy with gate_test=mcnemar",
        "details": {"field": "gate_metric", "gate_metric": "macro_f1", "gate_test": "mcnemar"},
    }
    settings = news.client.get("/api/v1/projects/news", headers=admin).json()["settings"]
    assert (settings["gate_metric"], settings["gate_test"]) == ("auto", "mcnemar")
    both = {"gate_metric": "macro_f1", "gate_test": "bootstrap"}
    assert news.client.patch(url, json=both, headers=admin).status_code == 200


def test_status_counts(news: Api) -> None:
    nxt = news.client.get("/api/v1/projects/news/queue/next", headers=news.as_("annotator")).json()
    news.client.post(
        "/api/v1/projects/news/annotations",
        json={"record_id": nxt["record"]["id"], "label": "sport", "seconds": 2.5},
        headers=news.as_("annotator"),
    )
    status = news.client.get("/api/v1/projects/news/status", headers=news.as_("annotator")).json()
    assert status["records"] == 12 and status["labeled"] == 1 and status["unlabeled"] == 11
    assert status["per_label"] == {"business": 0, "sport": 1, "tech": 0}
    assert status["per_annotator"] == {"annotator": 1}
    assert status["per_origin"] == {"human": 1}


def test_a_form_encoded_body_is_told_to_send_json(api: Api) -> None:
    # What `curl -d '{...}'` sends without -H 'Content-Type: application/json'.
    body = '{"name": "news", "task": "text", "labels": ["a", "b"]}'
    headers = {**api.as_("admin"), "Content-Type": "application/x-www-form-urlencoded"}
    answer = api.client.post("/api/v1/projects", content=body, headers=headers)
    assert answer.status_code == 415
    assert "Content-Type: application/json" in answer.json()["error"]["message"]
    listed = api.client.get("/api/v1/projects", headers=api.as_("admin")).json()
    assert listed == []


def test_ids_beyond_what_the_store_holds_are_422_not_500(api: Api) -> None:
    # Found by schemathesis: SQLite's driver overflowed on 2**63 and the server answered 500.
    admin = api.as_("admin")
    body = {"name": "news", "task": "text", "labels": ["a", "b"]}
    api.client.post("/api/v1/projects", json=body, headers=admin)
    huge = 2**63
    calls = [
        api.client.get(f"/api/v1/projects/news/records/{huge}", headers=admin),
        api.client.get(f"/api/v1/projects/news/records?after={huge}", headers=admin),
        api.client.get(f"/api/v1/projects/news/queue/next?exclude={huge}", headers=admin),
        api.client.post(
            "/api/v1/projects/news/annotations",
            json={"record_id": huge, "label": "a"},
            headers=admin,
        ),
        api.client.post(
            "/api/v1/projects/news/queue/skip", json={"record_id": huge}, headers=admin
        ),
        api.client.get(f"/api/v1/audit?after={huge}", headers=admin),
    ]
    assert [c.status_code for c in calls] == [422] * len(calls)
    assert all(c.json()["error"]["code"] == "invalid" for c in calls)


def test_a_json_body_with_a_bad_field_is_told_about_the_field(api: Api) -> None:
    # A +json media type is JSON to FastAPI too: the answer names the field, not the content type.
    headers = {**api.as_("admin"), "Content-Type": "application/merge-patch+json"}
    answer = api.client.post("/api/v1/projects", content='{"name": "news"}', headers=headers)
    assert answer.status_code == 422
    assert "content-type" not in answer.text.lower()
