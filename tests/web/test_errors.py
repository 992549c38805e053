"""The page's error states: a wrong key, a server that cannot be reached, a mission that failed."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import DESKTOP, PHONE, LiveServer, shoot, sign_in

TEMPLATE_TEXT = (files("orchestrator.data") / "anomaly-batch-scoring.md").read_text()

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    # One handoff per mission: the demo mission's second delegation trips the guard and the mission fails,
    # with the reason recorded, the way a real limit stops a real mission.
    return {"ORCH_MAX_HANDOFFS": "1"}


def test_wrong_key_is_refused_with_a_clear_message(server: LiveServer, new_page: Any) -> None:
    page = new_page(failed_requests_ok=True)
    sign_in(page, server, key="orch_not-a-real-key")

    expect(page.locator("#login-error")).to_contain_text("API key rejected")
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

    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner-text")).to_contain_text("Server unreachable")
    expect(page.locator("#banner-text")).to_contain_text("orchestrator serve")
    expect(page.get_by_role("heading", name="Server unreachable")).to_be_visible()
    shoot(page, "error-unreachable-desktop")

    page.unroute("**/api/v1/**")
    page.get_by_role("button", name="Retry").click()

    expect(page.locator("#banner")).to_be_hidden()
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
