"""The admin page in chromium against a real server with its job worker: create a project, import
a file through the upload and watch the job to the end, export, settings and users."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from looplab.api import create_app
from looplab.collect import export
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation, ImportBatch, Record
from looplab.govern import access
from tests.web.conftest import browser_or_skip, serve_in_thread
from tests.web.shots import SCHEMES, below, contrast, open_page, shot_dir

pytestmark = pytest.mark.browser

ROWS = 45_000  # past two of ingest's 20,000-row batches, so the job reports progress on the way
TOPICS = ["business", "sport", "tech"]
SCRIPT = "<img src=x onerror=alert(1)>"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def big_csv() -> bytes:
    lines = ["text,topic,source"]
    for i in range(ROWS):
        topic = TOPICS[i % 3] if i % 10 == 0 else ""
        lines.append(f"Article number {i} about {TOPICS[i % 3]},{topic},feed{i % 4}")
    lines.append(f"Article number 0 about {TOPICS[0]},,feed0")  # a duplicate, dropped
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def admin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, str]]:
    """A server with its embedded worker (import jobs run) over a fresh SQLite store."""
    browser_or_skip()
    home: Path = tmp_path_factory.mktemp("admin")
    store = Store(f"sqlite:///{home / 'looplab.db'}")
    store.upgrade()
    with store.write() as session:
        _, token = access.create_user(session, "root", "admin", actor="test")
    settings = Settings(home=home, run_worker=True, monitor_every_seconds=3600)
    app = create_app(settings, store=store)
    with serve_in_thread(app) as url:
        yield url, store, token


def sign_in_as_admin(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.locator("#token").fill(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.locator("#admin-link").click()
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()


def counts(store: Store) -> tuple[int, int, int]:
    with store.read() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(t)) or 0
            for t in (Record, Annotation, ImportBatch)
        )


def watch(page: Any, selector: str) -> None:
    """Keep every text the element shows in window.seen, for the test to read afterwards."""
    page.evaluate(
        """(selector) => {
          window.seen = [];
          const el = document.querySelector(selector);
          new MutationObserver(() => window.seen.push(el.textContent)).observe(
            el, { childList: true, characterData: true, subtree: true });
        }""",
        selector,
    )


def test_create_import_export_from_the_admin_page(
    browser: Any, admin_site: tuple[str, Store, str], tmp_path: Path
) -> None:
    url, store, token = admin_site
    with open_page(browser, "light") as page:
        sign_in_as_admin(page, url, token)

        # Create a project, from the keyboard.
        page.get_by_label("Name", exact=True).first.fill("articles")
        page.get_by_label("Labels").fill("business, sport, tech")
        page.get_by_label("Guidelines for annotators").fill(SCRIPT)
        page.get_by_role("button", name="Create project").press("Enter")
        create_status = page.locator("#create-form .status")
        expect(create_status).to_have_text(
            "Created project articles (text; labels: business, sport, tech)."
        )
        expect(page.locator("#admin-project")).to_have_value("articles")

        # Import: the file goes up, the job runs in the server's worker, the bar fills.
        page.locator("#import-file").set_input_files(
            files=[{"name": "articles.csv", "mimeType": "text/csv", "buffer": big_csv()}]
        )
        expect(page.locator("#import-text")).to_have_value("text")
        page.locator("#import-label").select_option("topic")
        page.get_by_label("source").check()
        watch(page, "#import-form .status")
        page.get_by_role("button", name="Import").click()
        status = page.locator("#import-form .status")
        expect(status).to_have_text(
            f"Done: imported {ROWS:,} records from articles.csv (1 duplicate dropped, "
            f"{ROWS // 10:,} labels).",
            timeout=90_000,
        )
        seen = page.evaluate("window.seen")
        assert any(text.startswith("Uploading articles.csv") for text in seen), seen
        assert any(text.startswith(("Queued", "Importing articles.csv")) for text in seen), seen
        assert page.locator(".import-progress").evaluate("bar => bar.value") == 100
        assert counts(store) == (ROWS, ROWS // 10, 1)
        with store.read() as session:
            project = projects.get_project(session, "articles")
            assert project.guidelines == SCRIPT  # stored and shown as text
            first = session.scalars(select(Record).order_by(Record.id).limit(1)).one()
            assert first.meta == {"source": "feed0"}

        # Export: the download is what `looplab export` writes.
        page.locator("#export-format").select_option("csv")
        with page.expect_download(timeout=60_000) as info:
            page.get_by_role("button", name="Download").click()
        download = info.value
        assert download.suggested_filename == "articles.csv"
        saved = tmp_path / "export.csv"
        download.save_as(saved)
        expected = io.BytesIO()
        with store.read() as session:
            export.export(session, projects.get_project(session, "articles"), "csv", expected)
        assert saved.read_bytes() == expected.getvalue()
        expect(page.locator("#export-form .status")).to_contain_text("Downloaded articles.csv")
        page.screenshot(path=str(shot_dir(tmp_path) / "admin-imported-light.png"), full_page=True)


def test_a_bad_upload_names_line_and_field_and_writes_nothing(
    browser: Any, admin_site: tuple[str, Store, str]
) -> None:
    url, store, token = admin_site
    with store.write() as session:
        if not any(p.name == "articles" for p in projects.list_projects(session)):
            projects.create_project(session, "articles", task="text", labels=TOPICS, actor="t")
    before = counts(store)
    bad = b'text,topic\n"fine",sport\n"not fine",nope\n'
    with open_page(browser, "light") as page:
        sign_in_as_admin(page, url, token)
        page.locator("#admin-project").select_option("articles")
        page.locator("#import-file").set_input_files(
            files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}]
        )
        page.locator("#import-label").select_option("topic")
        page.get_by_role("button", name="Import").click()
        status = page.locator("#import-form .status")
        expect(status).to_have_text(
            "Import failed, nothing was written: bad.csv: line 3, field 'topic': unknown label"
            " 'nope'; valid labels: business, sport, tech",
            timeout=30_000,
        )
        expect(status).to_have_attribute("role", "alert")
    assert counts(store) == before


def test_settings_and_users(browser: Any, admin_site: tuple[str, Store, str]) -> None:
    url, store, token = admin_site
    with store.write() as session:
        if not any(p.name == "articles" for p in projects.list_projects(session)):
            projects.create_project(session, "articles", task="text", labels=TOPICS, actor="t")
    with open_page(browser, "light") as page:
        sign_in_as_admin(page, url, token)
        page.locator("#admin-project").select_option("articles")
        # The first project's form shows until the chosen one's settings arrive: wait for them.
        expect(page.locator("#settings-form")).to_have_attribute("data-project", "articles")

        # Settings: a good value is saved; a bad one is refused with the server's message.
        retrain = page.locator("#setting-retrain_every")
        expect(retrain).to_have_value("50")
        retrain.fill("120")
        page.locator("#setting-show_suggestions").uncheck()
        page.get_by_role("button", name="Save settings").click()
        settings_status = page.locator("#settings-form .status")
        expect(settings_status).to_have_text("Saved: retrain_every, show_suggestions.")
        with store.read() as session:
            saved = projects.current_settings(projects.get_project(session, "articles"))
        assert (saved["retrain_every"], saved["show_suggestions"]) == (120, False)
        page.locator("#setting-overlap").fill("0")
        page.get_by_role("button", name="Save settings").click()
        expect(settings_status).to_contain_text("overlap")
        expect(page.locator("#setting-overlap")).to_have_attribute("aria-invalid", "true")

        # Users: add one, see the token once, disable them.
        page.locator("#user-name").fill(SCRIPT)
        page.get_by_role("button", name="Add user").click()
        expect(page.locator("#users-title ~ .status")).to_contain_text("invalid user name")
        page.locator("#user-name").fill("alice")
        page.locator("#user-role").select_option("reviewer")
        page.get_by_role("button", name="Add user").click()
        box = page.locator(".token-box")
        expect(box).to_be_focused()
        shown = box.locator(".token").text_content()
        assert shown and shown.startswith("ll_")
        with store.read() as session:
            assert access.authenticate(session, shown).name == "alice"
        row = page.get_by_role("row", name="alice")
        expect(row).to_contain_text("reviewer")
        page.get_by_role("button", name="Disable alice").click()
        expect(row).to_contain_text("disabled")
        with store.read() as session:
            assert access.get_user(session, "alice").active is False


@pytest.mark.parametrize("scheme", SCHEMES)
def test_admin_page_screenshot_and_contrast(
    browser: Any, admin_site: tuple[str, Store, str], scheme: str, tmp_path: Path
) -> None:
    url, _, token = admin_site
    with open_page(browser, scheme, height=1400) as page:
        sign_in_as_admin(page, url, token)
        page.get_by_role("button", name="Create project").click()  # an empty form: an error
        expect(page.locator("#create-form .status")).not_to_be_empty()
        page.screenshot(path=str(shot_dir(tmp_path) / f"admin-{scheme}.png"), full_page=True)
        for selector in ("#create-form .status", ".admin label", ".admin .hint", "#admin-link"):
            assert below(contrast(page, selector, "color"), 4.5) == [], selector
