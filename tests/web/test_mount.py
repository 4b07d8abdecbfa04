"""The UI is served by the API app: index.html uncached, assets cached under a content hash."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from looplab.api import create_app
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.web import STATIC


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path / 'looplab.db'}")
    store.upgrade()
    app = create_app(Settings(home=tmp_path, run_worker=False), store=store)
    with TestClient(app) as client:
        yield client


def test_index_is_never_cached_and_names_hashed_assets(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', response.text)
    assert sorted(a.rsplit("/", 1)[1] for a in assets) == ["app.js", "style.css"]
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200
        assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert got.content == (STATIC / asset.rsplit("/", 1)[1]).read_bytes()
    assert client.get(assets[0]).headers["content-type"].startswith("text/")


def test_module_imports_resolve_next_to_the_page_module(client: TestClient) -> None:
    page = client.get("/").text
    app_js = re.search(r'src="(/static/[^"]+/)app\.js"', page)
    assert app_js is not None
    label = client.get(app_js.group(1) + "label.js")
    assert label.status_code == 200
    assert label.headers["content-type"].startswith("text/javascript")


def test_head_requests_work(client: TestClient) -> None:
    assert client.head("/").status_code == 200
    assert client.head("/static/style.css").status_code == 200


def test_unversioned_and_stale_assets_are_served_uncached(client: TestClient) -> None:
    for path in ("/static/app.js", "/static/0123456789ab/app.js"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/static/nope.js", "/static/..%2F__init__.py", "/static/x/..%2F..%2Fapi%2Fapp.py"]
)
def test_only_the_shipped_files_are_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
