"""The page's error states: a wrong key, a server that cannot be reached, a mission that failed; every message
in the page's own words (the catalogue in web/messages.js), the server's words folded beneath."""

from __future__ import annotations

import re
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import DESKTOP, PHONE, LiveServer, shoot, sign_in

TEMPLATE_TEXT = (files("orchestrator.data") / "anomaly-batch-scoring.md").read_text()
WEB = Path(__file__).resolve().parents[2] / "web"
STATUS_PHRASES = sorted({s.phrase for s in HTTPStatus if s >= 400} | {"HTTP"}, key=len, reverse=True)
ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+/|/api/v\d|/missions/|/approvals/|/workspaces")
STATIC_ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+/|/api/v\d")


def jargon(text: str) -> list[str]:
    """The HTTP status phrases, routes and raw backticks in ``text``."""
    found = [phrase for phrase in STATUS_PHRASES if re.search(rf"\b{re.escape(phrase)}\b", text)]
    found += [m.group(0) for m in ROUTE.finditer(text)]
    return found + (["`"] if "`" in text else [])

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    # One handoff per mission: the demo mission's second delegation trips the guard and the mission fails,
    # with the reason recorded, the way a real limit stops a real mission.
    return {"ORCH_MAX_HANDOFFS": "1"}


def test_wrong_key_is_refused_with_a_clear_message(server: LiveServer, new_page: Any) -> None:
    page = new_page(failed_requests_ok=True)
    sign_in(page, server, key="orch_not-a-real-key")

    expect(page.locator("#login-error")).to_contain_text("This API key was not accepted")
    expect(page.locator("#login-error details.tech")).not_to_have_attribute("open", "")
    expect(page.locator("#login-view")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0, "a rejected key must not stay in the session"
    shoot(page, "error-wrong-key-desktop")


def test_key_is_kept_for_the_session(server: LiveServer, new_page: Any) -> None:
    page = new_page()
    sign_in(page, server)
    expect(page.locator("#whoami")).to_have_text("web-reviewer (admin)")

    page.reload()  # same tab session: no second sign-in

    expect(page.locator("#whoami")).to_have_text("web-reviewer (admin)")
    expect(page.locator("#login-view")).to_be_hidden()


def test_unreachable_server_is_reported_and_retry_recovers(server: LiveServer, new_page: Any) -> None:
    page = new_page(failed_requests_ok=True)
    sign_in(page, server)
    expect(page.locator("#whoami")).to_contain_text("web-reviewer")

    # The page itself is loaded; every API call now fails at the network level, as with a stopped server.
    page.route("**/api/v1/**", lambda route: route.abort("connectionrefused"))
    page.reload()

    expect(page.get_by_role("heading", name="Server unreachable")).to_be_visible()
    expect(page.locator("#offline-text")).to_contain_text("orchestrator serve")
    expect(page.locator("#banner")).to_be_hidden()  # said once, by the offline page
    shoot(page, "error-unreachable-desktop")

    page.unroute("**/api/v1/**")
    page.get_by_role("button", name="Try again").click()

    expect(page.locator("#offline-view")).to_be_hidden()
    expect(page.locator("#whoami")).to_contain_text("web-reviewer")


def test_failed_mission_shows_status_and_error(server: LiveServer, new_page: Any) -> None:
    server.api("POST", "/workspaces", json={"name": "demo", "template": "demo"})
    created = server.api("POST", "/missions", json={"text": TEMPLATE_TEXT, "workspace": "demo"})
    mission = server.wait_for_status(created["id"], {"failed", "completed", "rejected", "waiting_approval"},
                                     timeout_s=150)
    assert mission["status"] == "failed", f"expected the one-handoff limit to stop the mission: {mission}"
    assert "handoff" in mission["error"].lower()

    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(viewport)
        sign_in(page, server)
        page.goto(f"{server.url}/#/missions/{created['id']}")

        expect(page.locator("#m-status")).to_have_text("failed")
        expect(page.locator("#m-error")).to_be_visible()
        expect(page.locator("#m-error")).to_contain_text("Mission failed")
        expect(page.locator("#m-error")).to_contain_text(mission["error"][:60])
        expect(page.locator("#m-stream .entry.note.bad").last).to_contain_text("Mission failed")
        expect(page.locator("#reply-text")).to_be_disabled()
        expect(page.locator('#mission-list li[data-status="failed"]').first).to_be_attached()
        shoot(page, f"error-failed-mission-{name}")


def test_the_message_catalogue_has_no_status_phrase_route_or_backtick(server: LiveServer, new_page: Any) -> None:
    page = new_page()
    page.goto(server.url + "/")
    texts = page.evaluate("async () => (await import('/static/messages.js')).allMessages()")
    assert len(texts) > 30, texts
    offending = {text: jargon(text) for text in texts if jargon(text)}
    assert not offending, offending


def test_no_page_module_shows_a_status_phrase_or_route_outside_the_catalogue() -> None:
    # api.js knows the routes (to call them) and keeps the server's words on its errors; messages.js folds those
    # words as technical detail and is checked above. Every other module's strings are what a person can see.
    for path in sorted(WEB.glob("*.js")) + [WEB / "index.html"]:
        if path.name in ("api.js", "messages.js"):
            continue
        code = re.sub(r"/\*.*?\*/|<!--.*?-->", "", path.read_text(), flags=re.DOTALL)
        code = re.sub(r"^\s*//.*$|\s//\s.*$", "", code, flags=re.MULTILINE)  # comments are documentation
        strings = (re.findall(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`', code) if path.suffix == ".js"
                   else re.findall(r">([^<]+)<", code))
        offending = [s for s in strings if STATIC_ROUTE.search(s) or any(
            re.search(rf"\b{re.escape(phrase)}\b", s) for phrase in STATUS_PHRASES)]
        assert not offending, f"{path.name}: {offending}"


def test_an_error_says_what_to_do_and_folds_the_detail(server: LiveServer, new_page: Any) -> None:
    server.api("POST", "/workspaces", json={"name": "taken", "template": "empty"})
    page = new_page(failed_requests_ok=True)
    sign_in(page, server)
    page.get_by_label("Create new").check()
    page.get_by_label("Name").fill("taken")
    page.get_by_role("button", name="Create workspace").click()

    status = page.locator("#ws-status")
    expect(status).to_contain_text("A workspace with this name already exists. Pick another name")
    detail = status.locator("details.tech")
    expect(detail).not_to_have_attribute("open", "")
    expect(detail).to_contain_text("409")  # the server's words, for whoever asks
    assert not jargon(status.locator(".error-message").inner_text())
    expect(page.locator("#banner")).to_be_hidden()
    shoot(page, "error-folded-detail-desktop")
