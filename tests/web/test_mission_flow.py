"""The two people the page is for: an engineer who runs the demo mission from the chat and approves the release,
and a reviewer who checks the delegation graph and the audit chain (then sees a tampered row named)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from importlib.resources import files
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import PHONE, LiveServer, shoot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.mission, pytest.mark.timeout(900)]

SUB_AGENTS = ("data-scientist", "devops-engineer", "security-expert", "backend-developer")
MINUTE = 60_000


@pytest.fixture(scope="module")
def to_reject(server: LiveServer) -> str:
    """A second demo mission, started first so that it reaches its release gate while the first one runs."""
    server.api("POST", "/workspaces", json={"name": "to-reject", "template": "demo"})
    text = (files("orchestrator.data") / "anomaly-batch-scoring.md").read_text()
    return server.api("POST", "/missions", json={"text": text, "workspace": "to-reject"})["id"]


def test_demo_mission_from_chat_to_audit_review(server: LiveServer, new_page: Any, to_reject: str) -> None:
    page = new_page()
    sign_in(page, server)
    expect(page.locator("#new-view")).to_be_visible()

    # A demo workspace, created through the page.
    page.get_by_label("Create new").check()
    page.get_by_label("Name").fill("demo")
    page.get_by_label("Template").select_option("demo")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.locator("#ws-status")).to_contain_text("created", timeout=2 * MINUTE)
    expect(page.locator("#ws-select")).to_have_value(re.compile(r"demo$"))

    # The mission from the template button, sent from the chat.
    page.get_by_role("button", name="Use template").click()
    mission_box = page.get_by_label("Mission", exact=True)
    expect(mission_box).to_have_value(re.compile(r"^Mission: .*workspace “demo”.*\nInputs: "))
    if "<model folder>" in mission_box.input_value():  # the server does not list the workspace's files
        mission_box.fill(mission_box.input_value().replace(
            "<model folder>, <reference data>, <current data>",
            "models/anomaly-detector/, data/reference.csv, data/current.csv, pipelines/batch-scoring.yaml"))
    shoot(page, "chat-new-mission-desktop")
    page.get_by_role("button", name="Send mission").click()
    expect(page.locator("#mission-view")).to_be_visible()
    mission_id = re.search(r"#/missions/([^/]+)", page.url).group(1)

    # Agents' messages arrive live, each attributed to its agent and step.
    page.wait_for_function("""() => new Set([...document.querySelectorAll('#m-stream .entry.agent')]
                                .map(e => e.dataset.agent)).size >= 3""", timeout=4 * MINUTE)
    expect(page.locator("#m-stream details.handoff.out").first).to_contain_text("→")
    expect(page.locator("#m-stream .entry.agent .step-tag").first).to_be_visible()
    shoot(page, "chat-live-desktop")

    # An instruction mid-mission shows up in the conversation, from the record.
    page.get_by_label("Message to the agents").fill("Keep the nightly window at 2 hours.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#m-stream .entry.user").last).to_contain_text("Keep the nightly window at 2 hours.")

    # The release gate: the question, the exact payload and its hash.
    card = page.locator("#m-stream .approval.pending")
    expect(card).to_be_visible(timeout=8 * MINUTE)
    expect(page.locator("#pending-bar")).to_be_visible()
    expect(page.locator("#m-status")).to_have_text("waiting for approval")
    expect(page.locator('#m-steps li[data-step="release"]')).to_have_attribute("data-status", "waiting")
    gate = release_gate(server, mission_id)
    expect(card).to_have_attribute("data-approval-id", str(gate["id"]))
    expect(card.locator(".question")).to_have_text(gate["question"])
    expect(card.get_by_role("button", name="Approve")).to_be_visible()
    card.get_by_text("Exact payload and its SHA-256").click()
    expect(card.locator(".hash")).to_contain_text(gate["payload_sha256"])
    assert json.loads(card.locator("pre.json").inner_text()) == gate["payload"]
    card.scroll_into_view_if_needed()
    shoot(page, "approval-card-desktop")

    phone = new_page(PHONE)
    sign_in(phone, server)
    phone.goto(f"{server.url}/#/missions/{mission_id}")
    phone_card = phone.locator("#m-stream .approval.pending")
    expect(phone_card).to_be_visible(timeout=MINUTE)
    phone.get_by_role("button", name="Review").click()
    shoot(phone, "approval-card-phone")

    card.get_by_label("Comment on your decision").fill("Plan and artifacts reviewed.")
    card.get_by_role("button", name="Approve").click()
    decided = page.locator(f'#m-stream .approval[data-approval-id="{gate["id"]}"]')
    expect(decided.locator(".decision")).to_contain_text("Approved by web-reviewer")
    expect(decided.locator(".decision")).to_contain_text("Plan and artifacts reviewed.")

    # The mission completes; every step of the stepper is done.
    expect(page.locator("#m-status")).to_have_text("completed", timeout=8 * MINUTE)
    for step in ("align", "design", "implement", "evaluate", "package", "release"):
        expect(page.locator(f'#m-steps li[data-step="{step}"]')).to_have_attribute("data-status", "done")
    expect(page.locator("#m-stream .entry.note.ok").last).to_contain_text("completed")

    # The summary card says what `missions show --json` says.
    shown = server.show(mission_id)
    summary = page.locator("#m-stream .summary-card")
    expect(summary.locator(".pill")).to_have_text("completed")
    expect(summary.locator("dd.delegations")).to_contain_text(f"{len(shown['delegations'])} (")
    checks = shown.get("checks") or (shown.get("report") or {}).get("checks")
    if checks:
        rows = summary.locator(".summary-checks li")
        expect(rows).to_have_count(len(checks))
        passed = summary.locator(".summary-checks li.pass")
        expect(passed).to_have_count(sum(1 for c in checks if c.get("passed") is True or c.get("status") == "pass"))
    else:  # the record has no structured checks yet: the report step's own words and the report
        report = next(s for s in shown["steps"] if s["name"] == "report")
        expect(summary.locator(".checks-from-report")).to_contain_text(report["summary"][:40])
    expect(summary.locator("ul.deliverables a", has_text="reports/mission-report.md")).to_be_visible()
    summary.scroll_into_view_if_needed()
    shoot(page, "summary-completed-desktop")
    page.locator("#m-stream details.tool summary").first.click()
    expect(page.locator("#m-stream details.tool[open] pre.json").first).to_be_visible()
    shoot(page, "chat-completed-desktop")
    phone.reload()
    expect(phone.locator("#m-status")).to_have_text("completed")
    shoot(phone, "chat-completed-phone")

    # Artifacts: the evaluation report opens in the browser.
    page.get_by_role("tab", name="Artifacts").click()
    report_link = page.locator("#panel-files table a", has_text="reports/evaluation.html")
    expect(report_link).to_be_visible()
    with page.expect_popup() as popup_info:
        report_link.click()
    report = popup_info.value
    report.wait_for_load_state()
    expect(report.locator("body")).not_to_be_empty()
    assert report.url.startswith("blob:"), report.url
    report.close()

    # The reviewer: graph, edge details, verdict, timeline, export.
    page.get_by_role("tab", name="Audit review").click()
    verdict = page.locator("#panel-audit .verdict")
    expect(verdict).to_contain_text(re.compile(r"Audit chain intact — \d+ events"))
    for agent in SUB_AGENTS:
        expect(page.locator(f'svg.graph g.edge[data-from="ml-engineer"][data-to="{agent}"]')).to_have_count(1)
    page.locator('svg.graph g.edge[data-to="security-expert"]').click()
    details = page.locator("#panel-audit .edge-details")
    expect(details.locator("h3")).to_have_text("ML Engineer → Security Expert")
    expect(details.locator(".handoff-card").first).to_contain_text("Task:")
    expect(details.locator(".handoff-card").first).to_contain_text("Summary:")
    expect(details.locator("dl.facts").first).to_contain_text("Duration")
    page.locator('svg.graph g.edge[data-to="data-scientist"]').focus()
    page.keyboard.press("Enter")
    expect(details.locator("h3")).to_have_text("ML Engineer → Data Scientist")
    shoot(page, "audit-review-desktop", full_page=True)

    page.get_by_label("Filter by kind").select_option("handoff.started")
    rows = page.locator("#panel-audit ol.trail > li:visible")
    expect(rows.first).to_be_visible()
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")) == {"handoff.started"}
    page.get_by_label("Filter by kind").select_option("")
    page.get_by_label("Filter by step or text").fill("release")
    assert all(r == "release" or "release" in t.lower() for r, t in rows.evaluate_all(
        "rows => rows.map(r => [r.querySelector('.step-tag')?.textContent || '', r.textContent])"))
    page.get_by_label("Filter by step or text").fill("")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export JSONL").click()
    download = download_info.value
    assert download.suggested_filename == f"mission-{mission_id}-audit.jsonl"
    lines = [json.loads(line) for line in Path(download.path()).read_text().splitlines() if line.strip()]
    verify = server.api("GET", f"/missions/{mission_id}/audit/verify")
    assert len(lines) >= verify["events"] and verify["intact"]

    phone.get_by_role("tab", name="Audit review").click()
    expect(phone.locator("#panel-audit .verdict")).to_contain_text("Audit chain intact")
    phone.locator('svg.graph g.edge[data-to="devops-engineer"]').click()
    shoot(phone, "audit-review-phone", full_page=True)

    # Someone edits one row of the trail in the database: the review names the first bad entry.
    with sqlite3.connect(server.database) as db:
        changed = db.execute("UPDATE events SET payload = ? WHERE mission_id = ? AND seq = 5",
                             (json.dumps({"text": "nothing to see here"}), mission_id)).rowcount
    assert changed == 1
    page.get_by_role("button", name="Verify again").click()
    expect(verdict).to_contain_text("Audit chain BROKEN at entry #5")
    expect(verdict).to_contain_text("edited")
    expect(page.locator('#panel-audit ol.trail > li[data-seq="5"]')).to_have_class(re.compile(r"\bbad\b"))
    expect(page.locator('#panel-audit ol.trail > li[data-seq="5"]')).to_contain_text("first bad entry")
    page.get_by_role("button", name="Show entry #5").click()
    expect(page.locator('#panel-audit ol.trail > li[data-seq="5"] details')).to_have_attribute("open", "")
    shoot(page, "audit-broken-desktop")
    phone.get_by_role("button", name="Verify again").click()
    expect(phone.locator("#panel-audit .verdict")).to_contain_text("BROKEN at entry #5")
    shoot(phone, "audit-broken-phone")


def test_a_rejected_release_shows_rejected_everywhere(server: LiveServer, new_page: Any, to_reject: str) -> None:
    server.wait_for_status(to_reject, {"waiting_approval"}, timeout_s=600)
    gate = release_gate(server, to_reject)
    page = new_page()
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{to_reject}")
    release = page.locator('#m-steps li[data-step="release"]')
    expect(release).to_have_attribute("data-status", "waiting")
    card = page.locator(f'#m-stream .approval[data-approval-id="{gate["id"]}"]')
    card.get_by_label("Comment on your decision").fill("Not before the quarter closes.")
    card.get_by_role("button", name="Reject").click()
    ended = server.wait_for_status(to_reject, {"rejected", "completed", "failed", "blocked"}, timeout_s=120)
    assert ended["status"] == "rejected" and "Not before the quarter closes." in ended["reason"], ended
    steps = {s["name"]: s for s in ended["steps"]}
    assert steps["release"]["status"] == "rejected" and steps["report"]["status"] == "pending"
    # The tracker says what happened to each step: release rejected (not done), report never ran.
    expect(page.locator("#m-status")).to_have_text("rejected", timeout=30_000)
    expect(release).to_have_attribute("data-status", "rejected")
    expect(page.locator('#m-steps li[data-step="report"]')).not_to_have_attribute("data-status", "done")
    for step in ("align", "design", "implement", "evaluate", "package"):
        expect(page.locator(f'#m-steps li[data-step="{step}"]')).to_have_attribute("data-status", "done")
    expect(page.locator("#m-stream .summary-card .pill")).to_have_text("rejected")
    shoot(page, "release-rejected-desktop")


def release_gate(server: LiveServer, mission_id: str) -> dict[str, Any]:
    gates = [a for a in server.api("GET", f"/approvals?mission_id={mission_id}") if a["kind"] == "release"]
    assert len(gates) == 1, gates
    return gates[0]
