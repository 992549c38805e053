"""The page's views: each role sees only what it may do (the page asks ``/me`` and hides the rest with a line
saying so), the layout fits the window at desktop and phone sizes, the audit review keeps what the reviewer picked.

One server for the module. Its missions run on copies of the demo workspace whose model file is corrupt: the
first step is blocked and waits for a human review within seconds, instead of a whole run to the release gate.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agents.spec import LEAD_AGENT, SUB_AGENTS
from orchestrator.api.deps import GRANTS
from orchestrator.procedure import PROCEDURE
from tests.web.conftest import DESKTOP, PHONE, LiveServer, shoot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

TEMPLATE_TEXT = (files("orchestrator.data") / "anomaly-batch-scoring.md").read_text()
ROLES = ("submitter", "approver", "auditor", "admin")


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> dict[str, str]:
    """A key per role; the admin's is the server's own."""
    made = {role: server.create_key(role, f"{role}-web") for role in ROLES if role != "admin"}
    return {**made, "admin": server.key}


def _stopped_for_review(server: LiveServer, keys: dict[str, str], workspace: str) -> dict[str, Any]:
    """The submitter's mission on a copy of the demo workspace whose model file is corrupt: its first step is
    blocked and a human is asked to review it, seconds after it starts."""
    server.api("POST", "/workspaces", key=keys["submitter"], json={"name": workspace, "template": "demo"})
    for model in (server.home / "workspaces" / workspace / "models").rglob("*.joblib"):
        model.write_bytes(b"this is not a model")
    created = server.api("POST", "/missions", key=keys["submitter"], json={"text": TEMPLATE_TEXT, "workspace": workspace})
    mission = server.wait_for_status(created["id"], {"waiting_approval", "completed", "failed", "blocked"},
                                     timeout_s=120)
    assert mission["status"] == "waiting_approval" and mission["pending_approvals"], mission
    return mission


@pytest.fixture(scope="module")
def waiting(server: LiveServer, keys: dict[str, str]) -> dict[str, Any]:
    """A mission waiting for a human; no test decides it. The intact demo workspace is there too."""
    server.api("POST", "/workspaces", key=keys["submitter"], json={"name": "demo", "template": "demo"})
    return _stopped_for_review(server, keys, "broken-1")


@pytest.fixture(scope="module")
def blocked(server: LiveServer, keys: dict[str, str]) -> dict[str, Any]:
    """Another such mission, for the tests that decide its reviews."""
    return _stopped_for_review(server, keys, "broken-2")


@pytest.mark.parametrize("role", ROLES)
def test_me_lists_the_roles_permissions(server: LiveServer, keys: dict[str, str], role: str) -> None:
    me = server.api("GET", "/me", key=keys[role])
    assert me["role"] == role
    assert me["permissions"] == sorted(GRANTS[role])
    assert set(me["denied"]) | set(me["permissions"]) == set(GRANTS["admin"])


def test_a_refusal_is_one_plain_sentence(server: LiveServer, keys: dict[str, str], waiting: dict[str, Any]) -> None:
    gate = waiting["pending_approvals"][0]
    refused = server.raw("POST", f"/approvals/{gate['id']}/decision", key=keys["auditor"],
                         json={"decision": "approve", "payload_sha256": gate["payload_sha256"]})
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("the auditor role may not decide approvals (key 'auditor-web'); "
                                        "a key with the approver or admin role may")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_only_its_actions(server: LiveServer, keys: dict[str, str], waiting: dict[str, Any],
                                         new_page: Any, role: str, viewport: dict[str, int]) -> None:
    grants = GRANTS[role]
    page = new_page(viewport)
    sign_in(page, server, keys[role])
    expect(page.locator("#whoami")).to_have_text(f"{role}-web ({role})" if role != "admin" else "web-reviewer (admin)")

    # The new-mission form, or the line that says it is hidden.
    if "mission.create" in grants:
        expect(page.locator("#mission-form")).to_be_visible()
        expect(page.locator("#new-mission-link")).to_be_attached()
    else:
        expect(page.locator("#mission-form")).to_be_hidden()
        expect(page.locator("#new-view .hidden-line[data-permission=\"mission.create\"]")).to_contain_text(f"your role ({role}) may not start missions")
    create_ws = page.locator("label.radio", has_text="Create new")
    if "mission.create" in grants:
        expect(create_ws).to_be_visible() if "workspace.create" in grants else expect(create_ws).to_be_hidden()
    shoot(page, f"role-{role}-new-{_name(viewport)}")

    page.goto(f"{server.url}/#/missions/{waiting['id']}")
    card = page.locator("#m-stream .approval.pending").first
    expect(card).to_be_visible()
    decide = card.get_by_role("button", name="Approve")
    if "approval.decide" in grants:
        expect(decide).to_be_visible()
        expect(card.get_by_role("button", name="Reject")).to_be_visible()
    else:
        expect(decide).to_have_count(0)
        expect(card.locator(".hidden-line")).to_contain_text(f"your role ({role}) may not decide approvals")

    if "mission.act" in grants:
        expect(page.locator("#reply-form")).to_be_visible()
        expect(page.get_by_role("button", name="Cancel mission")).to_be_visible()
    else:
        expect(page.locator("#reply-form")).to_be_hidden()
        expect(page.get_by_role("button", name="Cancel mission")).to_be_hidden()
        expect(page.locator("#panel-chat .hidden-line[data-permission=\"mission.act\"]")).to_contain_text("may not send messages to, cancel or resume")

    audit_tab = page.get_by_role("tab", name="Audit review")
    if "audit.read" in grants:
        expect(audit_tab).to_be_visible()
    else:
        expect(audit_tab).to_be_hidden()
        expect(page.locator(".tabbar .hidden-line")).to_contain_text("may not read the audit trail")
    card.scroll_into_view_if_needed()
    shoot(page, f"role-{role}-mission-{_name(viewport)}")


def _name(viewport: dict[str, int]) -> str:
    return "desktop" if viewport == DESKTOP else "phone"


def test_a_refusal_shows_once_beside_the_action(server: LiveServer, waiting: dict[str, Any], new_page: Any) -> None:
    page = new_page(failed_requests_ok=True)
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{waiting['id']}")
    # The server refuses (a role changed under the page, say): the page says it next to the box, not twice.
    refusal = {"type": "about:blank", "title": "Forbidden", "status": 403,
               "detail": "the auditor role may not send messages to, cancel or resume missions (key 'x'); "
                         "a key with the submitter or admin role may"}
    page.route("**/api/v1/missions/*/messages", lambda route: route.fulfill(
        status=403, content_type="application/problem+json", body=json.dumps(refusal)))
    page.get_by_label("Message to the agents").fill("Keep the nightly window at 2 hours.")
    page.get_by_role("button", name="Send", exact=True).click()

    error = page.locator("#reply-error")
    expect(error.locator(".error-message")).to_have_text("The message was not sent. Your role may not do this. "
                                                         "A key with another role may: ask the operator for one.")
    expect(error.locator("details.tech")).to_contain_text("a key with the submitter or admin role may")
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.get_by_text("Your role may not do this")).to_have_count(1)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_sign_in_uses_the_whole_width(server: LiveServer, new_page: Any, viewport: dict[str, int]) -> None:
    page = new_page(viewport)
    page.goto(server.url + "/")
    form = page.locator("#login-form")
    expect(form).to_be_visible()
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.get_by_role("button", name="Show missions")).to_be_hidden()  # no menu to open before signing in
    main = page.locator("main").bounding_box()
    box = form.bounding_box()
    assert main["width"] >= viewport["width"] - 1, main  # no empty sidebar column
    assert box["width"] >= min(700, viewport["width"] - 60), box
    assert abs((box["x"] + box["width"] / 2) - viewport["width"] / 2) < 20, box  # centred
    shoot(page, f"sign-in-{_name(viewport)}")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_mission_view_is_no_taller_than_the_window(server: LiveServer, waiting: dict[str, Any], new_page: Any,
                                                       viewport: dict[str, int]) -> None:
    page = new_page(viewport)
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{waiting['id']}")
    expect(page.locator("#m-stream .approval.pending").first).to_be_visible()
    sizes = page.evaluate("""() => ({
        doc: document.documentElement.scrollHeight, win: innerHeight,
        main: [document.querySelector('main').scrollHeight, document.querySelector('main').clientHeight],
        stream: [document.getElementById('m-stream').scrollHeight, document.getElementById('m-stream').clientHeight],
        sidebar: document.getElementById('sidebar').getBoundingClientRect().bottom})""")
    assert sizes["doc"] <= sizes["win"], sizes
    if viewport == DESKTOP:
        assert sizes["main"][0] <= sizes["main"][1] + 1, f"the main area scrolls around the conversation: {sizes}"
        assert sizes["stream"][0] > sizes["stream"][1], f"the conversation is the one thing that scrolls: {sizes}"
        assert sizes["sidebar"] >= sizes["win"] - 1, f"the sidebar stops short of the window's bottom: {sizes}"
    shoot(page, f"mission-fits-{_name(viewport)}")


def test_the_selected_arrow_and_the_filters_survive_verify_again(server: LiveServer, waiting: dict[str, Any],
                                                                 new_page: Any) -> None:
    page = new_page()
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{waiting['id']}/audit")
    expect(page.locator("#panel-audit .verdict")).to_contain_text("Audit chain intact")
    edge = page.locator('svg.graph g.edge[data-to="data-scientist"]')
    edge.click()
    expect(edge).to_have_class(re.compile(r"\bselected\b"))
    expect(edge).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Filter by kind").select_option("handoff.started")
    page.get_by_label("Filter by step or text").fill("align")

    page.get_by_role("button", name="Verify again").click()

    expect(page.locator("#panel-audit .verdict")).to_contain_text("Audit chain intact")
    edge = page.locator('svg.graph g.edge[data-to="data-scientist"]')
    expect(edge).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#panel-audit .edge-details h3")).to_have_text("ML Engineer → Data Scientist")
    expect(page.get_by_label("Filter by kind")).to_have_value("handoff.started")
    expect(page.get_by_label("Filter by step or text")).to_have_value("align")
    kinds = page.locator("#panel-audit ol.trail > li:visible").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds and set(kinds) == {"handoff.started"}, kinds
    shoot(page, "audit-selection-kept-desktop")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_mission_the_user_may_not_see_gets_one_clear_page(server: LiveServer, keys: dict[str, str],
                                                            waiting: dict[str, Any], new_page: Any,
                                                            viewport: dict[str, int]) -> None:
    other = server.create_key("submitter", f"other-submitter-{_name(viewport)}")
    for key, mission_id in ((other, waiting["id"]), (keys["admin"], "no-such-mission")):
        page = new_page(viewport, failed_requests_ok=True)  # the 404 is the answer being shown
        sign_in(page, server, key)
        expect(page.locator("#whoami")).not_to_be_empty()
        page.goto(f"{server.url}/#/missions/{mission_id}")

        expect(page.get_by_role("heading", name="Mission not found or not yours")).to_be_visible()
        expect(page.locator("#mission-view")).to_be_hidden()
        expect(page.get_by_label("Message to the agents")).to_be_hidden()
        expect(page.get_by_role("link", name="Back to your missions")).to_be_visible()
        shoot(page, f"not-found-{'other' if key == other else 'missing'}-{_name(viewport)}")

        page.get_by_role("link", name="Back to your missions").click()
        expect(page.locator("#new-view")).to_be_visible()


def test_the_template_names_the_workspaces_own_inputs(server: LiveServer, keys: dict[str, str],
                                                      waiting: dict[str, Any], new_page: Any) -> None:
    page = new_page()
    sign_in(page, server, keys["submitter"])
    page.get_by_label("Workspace", exact=True).select_option(str((server.home / "workspaces" / "demo").resolve()))
    page.get_by_role("button", name="Use template").click()

    text = page.get_by_label("Mission", exact=True)
    expect(text).to_have_value(re.compile(r"^Mission: Productionize the model in workspace “demo”"))
    value = text.input_value()
    assert "/agent" not in value
    inputs = next(line for line in value.splitlines() if line.startswith("Inputs: "))[len("Inputs: "):]
    workspace = server.home / "workspaces" / "demo"
    listed = [name for name in inputs.split(", ") if not name.startswith("<")]
    assert all((workspace / name).exists() for name in listed), listed  # no file the workspace does not have
    if not listed:
        # The server does not list the workspace's files: placeholders, the first one selected to type over.
        assert page.evaluate("() => { const t = document.getElementById('mission-text');"
                             " return t.value.slice(t.selectionStart, t.selectionEnd); }") == "<model folder>"
        page.get_by_role("button", name="Send mission").click()
        expect(page.locator("#mission-error")).to_contain_text("Replace the parts in angle brackets")
    shoot(page, "template-desktop")


def test_the_procedure_route_serves_the_declaration(server: LiveServer, keys: dict[str, str]) -> None:
    declared = server.api("GET", "/procedure", key=keys["auditor"])
    assert [s["name"] for s in declared["steps"]] == list(PROCEDURE.step_names)
    assert [s["name"] for s in declared["steps"] if s["listed"]] == list(PROCEDURE.listed)
    assert len(declared["edges"]) == sum(len(PROCEDURE.destinations(node)) for node in PROCEDURE.nodes)
    assert {"waiting", "blocked", "rejected"} <= set(declared["step_statuses"])
    assert "completed" in declared["terminal_statuses"] and "running" not in declared["terminal_statuses"]


def test_the_page_keeps_no_copy_of_the_procedure() -> None:
    # Steps and agents come from GET /procedure: no module names them.
    web = Path(__file__).resolve().parents[2] / "web"
    for path in web.glob("*.js"):
        code = path.read_text()
        quoted = {name for name in (*PROCEDURE.step_names, LEAD_AGENT, *SUB_AGENTS)
                  if f'"{name}"' in code or f"'{name}'" in code}
        # A payload field may share a step's name (the review's "manual_plan"); a list of them is a copy.
        assert len(quoted & set(PROCEDURE.step_names)) < 2, f"{path.name} lists steps: {sorted(quoted)}"
        assert not quoted & {LEAD_AGENT, *SUB_AGENTS}, f"{path.name} names agents: {sorted(quoted)}"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_step_tracker_shows_what_was_recorded(server: LiveServer, waiting: dict[str, Any], new_page: Any,
                                                  viewport: dict[str, int]) -> None:
    page = new_page(viewport)
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{waiting['id']}")
    steps = page.locator("#m-steps > li")
    mission = server.api("GET", f"/missions/{waiting['id']}")
    expect(steps).to_have_count(len([s for s in mission["steps"] if s["name"] != "manual_plan"]))
    for step in mission["steps"]:  # the mission is paused at its gate: the record holds still
        if step["name"] != "manual_plan":
            expect(page.locator(f'#m-steps li[data-step="{step["name"]}"]')).to_have_attribute("data-status",
                                                                                             step["status"])
    # Report sits in the same row as the other steps. The list is redrawn on events: both boxes are read in one
    # script run (no redraw in between), once every item is laid out.
    first, last = page.wait_for_function("""() => {
        const boxes = [...document.querySelectorAll('#m-steps > li')].map(item => item.getBoundingClientRect());
        return boxes.length > 1 && boxes.every(box => box.height > 0) ? [boxes[0].top, boxes.at(-1).top] : null;
    }""").json_value()
    assert abs(first - last) < 2, (first, last)
    if viewport == DESKTOP:
        page.get_by_text("Procedure and delegations").click()  # folded until asked for
        flow = page.locator("svg.flow")
        expect(flow).to_be_visible()
        expect(page.locator(f'svg.flow g.flow-node.current[data-node="{mission["current_step"]}"]')).to_have_count(1)
        expect(page.locator('svg.flow line.flow-handoff[data-agent="data-scientist"]:not(.declared)')).not_to_have_count(0)
    shoot(page, f"steps-{_name(viewport)}")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_approval_card_shows_the_summary_and_the_decision_first(server: LiveServer, waiting: dict[str, Any],
                                                                   new_page: Any, viewport: dict[str, int]) -> None:
    gate = waiting["pending_approvals"][0]
    page = new_page(viewport)
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{waiting['id']}")
    page.get_by_role("button", name="Review").click()
    card = page.locator(f'#m-stream .approval[data-approval-id="{gate["id"]}"]')
    expect(card.locator(".question")).to_have_text(gate["question"])
    summary = card.locator(".approval-summary")
    expect(summary).to_contain_text("Step outcome")
    expect(summary).to_contain_text(gate["payload"]["status"])
    expect(card).to_contain_text(gate["payload"]["reason"][:60])  # said once, in the question or the summary
    for name in ("Approve", "Request changes", "Reject"):
        button = card.get_by_role("button", name=name)
        expect(button).to_be_in_viewport()
    payload = card.locator("details.payload")
    expect(payload).not_to_have_attribute("open", "")
    shoot(page, f"approval-summary-{_name(viewport)}")

    payload.locator("summary").click()
    assert json.loads(payload.locator("pre.json").inner_text()) == gate["payload"]
    expect(payload.locator(".hash")).to_contain_text(gate["payload_sha256"])

    # Changes need words: the comment is the instruction the step runs again with.
    card.get_by_role("button", name="Request changes").click()
    expect(card.locator(".error-text")).to_contain_text("Say what should change")
    expect(card).to_have_class(re.compile(r"\bpending\b"))


def test_request_changes_runs_the_step_again_with_the_comment(server: LiveServer, blocked: dict[str, Any],
                                                              new_page: Any) -> None:
    review = blocked["pending_approvals"][0]
    page = new_page()
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{blocked['id']}")
    card = page.locator(f'#m-stream .approval[data-approval-id="{review["id"]}"]')
    card.get_by_label("Comment on your decision").fill("Load the model from the ONNX export instead.")
    card.get_by_role("button", name="Request changes").click()

    expect(card.locator(".decision")).to_contain_text("Changes requested by web-reviewer")
    expect(card.locator(".decision")).to_contain_text("Load the model from the ONNX export instead.")
    step = page.locator(f'#m-steps li[data-step="{review["step"]}"]')
    expect(step.locator(".step-state")).to_contain_text("2×", timeout=90_000)  # its second round
    decided = next(a for a in server.api("GET", f"/missions/{blocked['id']}")["approvals"] if a["id"] == review["id"])
    assert (decided["status"], decided["comment"]) == ("changes_requested", "Load the model from the ONNX export instead.")
    # The model is still corrupt: the step is blocked again and a new review is asked for.
    expect(page.locator("#m-stream .approval.pending")).to_have_count(1, timeout=90_000)
    shoot(page, "request-changes-desktop")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_blocked_step_waits_for_review_then_ends_the_mission_blocked(
        server: LiveServer, blocked: dict[str, Any], new_page: Any, viewport: dict[str, int]) -> None:
    review = server.api("GET", f"/missions/{blocked['id']}")["approvals"][-1]  # the latest review
    page = new_page(viewport)
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{blocked['id']}")
    step = page.locator(f'#m-steps li[data-step="{review["step"]}"]')
    if review["status"] == "pending":
        expect(step).to_have_attribute("data-status", "waiting")
        expect(page.locator("#m-status")).to_have_text("waiting for approval")
        step.get_by_role("button").click()
        expect(page.locator("#m-step-detail")).to_contain_text("waiting for approval")
        expect(page.locator("#m-step-detail")).to_contain_text("blocked")  # what the step concluded, and why
        shoot(page, f"step-waiting-{_name(viewport)}")
        server.api("POST", f"/approvals/{review['id']}/decision",
                   json={"decision": "reject", "comment": "Fix the model file first.",
                         "payload_sha256": review["payload_sha256"]})
        ended = server.wait_for_status(blocked["id"], {"blocked", "failed", "rejected", "completed"}, timeout_s=60)
        assert ended["status"] == "blocked", ended
    expect(page.locator("#m-status")).to_have_text("blocked")
    expect(step).to_have_attribute("data-status", "blocked")
    expect(page.locator("#m-error")).to_contain_text("Mission blocked")
    expect(page.locator("#m-error")).to_contain_text("model")
    for later in ("implement", "evaluate", "package", "release", "report"):
        expect(page.locator(f'#m-steps li[data-step="{later}"]')).not_to_have_attribute("data-status", "done")
    expect(page.get_by_label("Message to the agents")).to_be_disabled()
    shoot(page, f"step-blocked-{_name(viewport)}")

    # The end reads like a CI run: status and why, checks, deliverables, duration, delegations, cost.
    shown = server.show(blocked["id"])
    card = page.locator("#m-stream .summary-card")
    expect(card).to_be_visible()
    expect(card.locator(".pill")).to_have_text("blocked")
    expect(card.locator(".summary-title")).to_contain_text((shown.get("reason") or shown["error"])[:60])
    expect(card.locator("dd.delegations")).to_contain_text(f"{len(shown['delegations'])} (")
    for check in shown.get("checks") or []:
        expect(card.locator(f'.summary-checks li[data-check="{check["name"]}"]')).to_be_visible()
    card.scroll_into_view_if_needed()
    shoot(page, f"summary-blocked-{_name(viewport)}")
