"""The unmodified ``langgraph-sdk`` client drives missions through the LangGraph Platform API subset.

In-process (the app behind a TestClient, scripted models, the real runner pool) for the rules; the real
``orchestrator serve`` with the built-in planner and the demo workspace for the end-to-end acceptance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from sqlalchemy import func, select

from orchestrator.db import session_scope
from orchestrator.db.models import Approval, Event, Mission, Thread
from orchestrator.procedure import STEPS
from tests.api.conftest import auth, sse_events
from tests.support.fake_chat import ai, call
from tests.support.servers import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[2]
MISSION = {"messages": [{"role": "user", "content": "Mission: productionize the model"}]}
GRAPH = "ml-engineering"


@pytest.fixture
def sdk(client: TestClient, keys: dict[str, str]) -> Callable[[str], SyncLangGraphClient]:
    """``sdk(role)``: the SDK's own client on the running app, sending that role's key as ``X-Api-Key``."""

    def make(role: str) -> SyncLangGraphClient:
        http = TestClient(client.app, headers={"x-api-key": keys[role]})  # no lifespan: the app is running
        return SyncLangGraphClient(http)

    return make


def _interrupt(parts: list[Any]) -> dict[str, Any]:
    (found,) = [p.data["__interrupt__"][0] for p in parts if p.event == "updates" and "__interrupt__" in p.data]
    return found


def _updated_nodes(parts: list[Any]) -> list[str]:
    return [node for p in parts if p.event == "updates" for node in p.data]


def test_a_mission_runs_to_its_gate_is_resumed_with_the_payload_hash_and_ends(
        sdk: Callable[[str], SyncLangGraphClient], client: TestClient, keys: dict[str, str], api_settings) -> None:
    submitter, approver = sdk("submitter"), sdk("approver")
    thread = submitter.threads.create(metadata={"workspace": "ws"})
    assert thread["status"] == "idle" and thread["metadata"]["workspace"] == "ws"

    parts = list(submitter.runs.stream(thread["thread_id"], GRAPH, input=MISSION,
                                       stream_mode=["updates", "messages-tuple"]))
    assert parts[0].event == "metadata" and parts[-1].event == "end"
    assert _updated_nodes(parts) == ["align", "data-scientist", "design", "implement", "evaluate", "package",
                                     "release", "__interrupt__"]
    assert {p.data[1]["langgraph_node"] for p in parts if p.event == "messages"} >= {"align", "data-scientist"}
    interrupt = _interrupt(parts)
    (request,) = interrupt["value"]
    assert request["config"]["allow_accept"] and not request["config"]["allow_edit"]
    args = request["action_request"]["args"]
    with session_scope(api_settings.resolved_database_url) as session:
        gate = session.get(Approval, args["approval_id"])
        assert gate is not None and gate.status == "pending"
        assert (args["payload_sha256"], args["payload"], args["question"]) == (gate.payload_sha256, gate.payload,
                                                                              gate.question)
    state = submitter.threads.get_state(thread["thread_id"])
    assert state["next"] == ["release_gate"] and [i["id"] for i in state["interrupts"]] == [interrupt["id"]]
    assert submitter.threads.get(thread["thread_id"])["status"] == "interrupted"

    decide = {"decision": "approve", "payload_sha256": args["payload_sha256"], "comment": "plan reviewed"}
    with pytest.raises(PermissionDeniedError, match="may not decide approvals"):
        list(submitter.runs.stream(thread["thread_id"], GRAPH, command={"resume": decide}))
    with pytest.raises(ConflictError, match="not the one pending"):
        list(approver.runs.stream(thread["thread_id"], GRAPH,
                                  command={"resume": {**decide, "payload_sha256": "0" * 64}}))
    with pytest.raises(UnprocessableEntityError, match="does not quote the payload's SHA-256"):
        list(approver.runs.stream(thread["thread_id"], GRAPH, command={"resume": {"decision": "approve"}}))
    assert submitter.threads.get(thread["thread_id"])["status"] == "interrupted"  # nothing was decided

    resumed = list(approver.runs.stream(thread["thread_id"], GRAPH, command={"resume": {interrupt["id"]: decide}},
                                        stream_mode="updates"))
    assert _updated_nodes(resumed)[0] == "release_gate" and _updated_nodes(resumed)[-1] == "report"
    assert resumed[0].data["run_id"] != parts[0].data["run_id"] and resumed[-1].event == "end"
    assert submitter.threads.get(thread["thread_id"])["status"] == "idle"
    runs = submitter.runs.list(thread["thread_id"])
    assert [r["run_id"] for r in runs] == [resumed[0].data["run_id"], parts[0].data["run_id"]]
    assert [r["status"] for r in runs] == ["success", "success"]

    mission_id = submitter.threads.get(thread["thread_id"])["metadata"]["mission_id"]
    view = client.get(f"/api/v1/missions/{mission_id}", headers=auth(keys["admin"])).json()
    assert view["status"] == "completed" and view["audit"]["intact"]
    assert [(a["status"], a["decided_by"], a["comment"]) for a in view["approvals"]] == [
        ("approved", "approver", "plan reviewed")]
    streamed = [(p.data["data-scientist"]["delegation_id"], "data-scientist") for p in parts
                if p.event == "updates" and "data-scientist" in p.data]
    assert streamed == [(d["id"], d["to_agent"]) for d in view["delegations"]]


def test_a_second_client_sees_the_same_parts_and_a_reconnection_gets_the_rest(
        sdk: Callable[[str], SyncLangGraphClient]) -> None:
    first, second = sdk("submitter"), sdk("auditor")
    thread = first.threads.create(metadata={"workspace": "ws"})
    created: list[Any] = []
    seen: list[Any] = []
    streaming = threading.Thread(target=lambda: seen.extend(first.runs.stream(
        thread["thread_id"], GRAPH, input=MISSION, stream_mode=["updates", "custom"],
        on_run_created=created.append)))
    streaming.start()
    while not created and streaming.is_alive():
        threading.Event().wait(0.01)
    run_id = created[0]["run_id"]
    joined = list(second.runs.join_stream(thread["thread_id"], run_id, stream_mode=["updates", "custom"]))
    streaming.join(timeout=60)

    def parts(items: list[Any]) -> list[tuple[str, str | None, Any]]:
        return [(p.event, p.id, p.data) for p in items if p.event not in ("metadata", "end")]

    assert parts(joined) == parts(seen) and len(parts(seen)) > 20
    assert [p[2]["seq"] for p in parts(seen) if p[0] == "custom"] == list(range(1, len(
        [p for p in parts(seen) if p[0] == "custom"]) + 1))  # the whole trail, in order, once
    middle = parts(seen)[10]
    rest = list(second.runs.join_stream(thread["thread_id"], run_id, stream_mode=["updates", "custom"],
                                        last_event_id=middle[1]))
    assert parts(rest) == parts(seen)[11:]


def test_wait_and_background_runs(sdk: Callable[[str], SyncLangGraphClient]) -> None:
    submitter, approver = sdk("submitter"), sdk("approver")
    thread = submitter.threads.create()
    values = submitter.runs.wait(thread["thread_id"], GRAPH, input=MISSION, context={"workspace": "ws"})
    args = values["__interrupt__"][0]["value"][0]["action_request"]["args"]
    run = approver.runs.create(thread["thread_id"], GRAPH, command={"resume": {
        "type": "accept", "args": {"action": "approve_release", "args": args}}})
    assert run["status"] == "pending" and run["thread_id"] == thread["thread_id"]
    final = approver.runs.join(thread["thread_id"], run["run_id"])
    assert "__interrupt__" not in final and final["step"] == "report"
    assert approver.runs.get(thread["thread_id"], run["run_id"])["status"] == "success"
    history = submitter.threads.get_history(thread["thread_id"], limit=3)
    assert len(history) == 3 and history[0]["checkpoint"]["thread_id"] == thread["thread_id"]


def _design_fails_once() -> dict[str, list[Any]]:
    finish = call("finish_step", "fin-design", status="failed", summary="design", reason="no owner for the table")
    return {"ml-engineer": [ai("aligned"), ai("design", finish), ai("design again, with an owner"),
                            *[ai(f"done {step}") for step in STEPS[2:]]]}


def test_a_review_gate_answered_in_the_agent_inbox_shape_runs_the_step_again(make_client, keys) -> None:  # noqa: ANN001
    app_client = make_client(_design_fails_once)
    approver = SyncLangGraphClient(TestClient(app_client.app, headers={"x-api-key": keys["approver"]}))
    submitter = SyncLangGraphClient(TestClient(app_client.app, headers={"x-api-key": keys["submitter"]}))
    thread = submitter.threads.create(metadata={"workspace": "ws"})
    values = submitter.runs.wait(thread["thread_id"], GRAPH, input=MISSION)
    (request,) = values["__interrupt__"][0]["value"]
    assert "no owner for the table" in request["description"]
    sha = request["action_request"]["args"]["payload_sha256"]
    answer = {"type": "response", "args": "name the table owner", "payload_sha256": sha}  # Agent Inbox "respond"
    parts = list(approver.runs.stream(thread["thread_id"], GRAPH, command={"resume": [answer]}, stream_mode="updates"))
    assert parts[1].data == {"review": {"approval_id": request["action_request"]["args"]["approval_id"],
                                        "decision": "changes_requested", "decided_by": "approver",
                                        "comment": "name the table owner"}}
    assert _updated_nodes(parts)[-1] == "__interrupt__" and "design" in _updated_nodes(parts)
    release = _interrupt(parts)["value"][0]["action_request"]
    approver.runs.wait(thread["thread_id"], GRAPH, command={"resume": {"type": "accept", "args": release}})
    assert submitter.threads.get(thread["thread_id"])["status"] == "idle"


def test_bad_runs_are_refused_with_the_reason_and_write_nothing(
        sdk: Callable[[str], SyncLangGraphClient], api_settings) -> None:
    submitter = sdk("submitter")
    thread = submitter.threads.create()
    refusals = [
        (dict(input=MISSION), UnprocessableEntityError, "no workspace for the mission"),
        (dict(input=MISSION, context={"workspace": "elsewhere"}), UnprocessableEntityError, "does not exist"),
        (dict(input={"messages": []}, context={"workspace": "ws"}), UnprocessableEntityError, "holds no mission"),
        (dict(input=MISSION, context={"workspace": "ws"}, checkpoint_id="x"), UnprocessableEntityError,
         "earlier checkpoint"),
        (dict(input=MISSION, context={"workspace": "ws"}, stream_mode="everything"), UnprocessableEntityError,
         "stream mode 'everything'"),
    ]
    for kwargs, error, message in refusals:
        with pytest.raises(error, match=message):
            list(submitter.runs.stream(thread["thread_id"], GRAPH, **kwargs))
    with pytest.raises(ConflictError, match="no mission yet"):
        list(sdk("admin").runs.stream(thread["thread_id"], GRAPH, command={"resume": {"decision": "approve"}}))
    with pytest.raises(UnprocessableEntityError, match="no workspace"):
        list(submitter.runs.stream(None, GRAPH, input=MISSION))
    with pytest.raises(UnprocessableEntityError, match="not one a thread can have"):
        list(submitter.runs.stream("no such thread!", GRAPH, input=MISSION, context={"workspace": "ws"},
                                   if_not_exists="create"))
    with pytest.raises(UnprocessableEntityError, match="metadata is larger"):
        submitter.threads.create(metadata={"notes": "x" * 70_000})
    with pytest.raises(NotFoundError, match="no assistant 'other'"):
        list(submitter.runs.stream(thread["thread_id"], "other", input=MISSION, context={"workspace": "ws"}))
    with session_scope(api_settings.resolved_database_url) as session:
        assert session.scalar(select(func.count()).select_from(Mission)) == 0
        assert session.scalar(select(func.count()).select_from(Thread)) == 1
    submitter.runs.wait(thread["thread_id"], GRAPH, input=MISSION, context={"workspace": "ws"})
    with pytest.raises(Exception, match="409 Conflict"):  # runs.wait raises the HTTP client's own error
        submitter.runs.wait(thread["thread_id"], GRAPH, input=MISSION, context={"workspace": "ws"})
    with pytest.raises(ConflictError, match="waiting for a decision"):
        submitter.http.post(f"/threads/{thread['thread_id']}/runs/wait", json={"assistant_id": GRAPH, "input": MISSION})


def test_keys_roles_and_visibility(sdk: Callable[[str], SyncLangGraphClient], client: TestClient,
                                   keys: dict[str, str]) -> None:
    mine = sdk("submitter").threads.create(metadata={"team": "a"})
    bearer = SyncLangGraphClient(TestClient(client.app, headers=auth(keys["admin"])))
    assert bearer.threads.get(mine["thread_id"])["thread_id"] == mine["thread_id"]
    with pytest.raises(AuthenticationError, match="an API key is required"):
        SyncLangGraphClient(TestClient(client.app)).threads.search()
    with pytest.raises(PermissionDeniedError):
        sdk("auditor").threads.create()
    other = sdk("admin").threads.create(metadata={"team": "b"})
    with pytest.raises(NotFoundError):
        sdk("submitter").threads.get(other["thread_id"])
    assert [t["thread_id"] for t in sdk("submitter").threads.search()] == [mine["thread_id"]]
    assert [t["thread_id"] for t in bearer.threads.search(metadata={"team": "b"})] == [other["thread_id"]]
    assert [t["thread_id"] for t in bearer.threads.search(status="busy")] == []


def test_the_assistant_its_graph_and_schemas(sdk: Callable[[str], SyncLangGraphClient], client: TestClient) -> None:
    reader = sdk("auditor")
    info = reader.http.get("/info")
    assert info["flags"]["assistants"] is True
    (assistant,) = reader.assistants.search()
    assert assistant["graph_id"] == GRAPH and reader.assistants.get(assistant["assistant_id"]) == assistant
    graph = reader.assistants.get_graph(GRAPH)
    nodes = {node["id"] for node in graph["nodes"]}
    assert {"align", "release", "release_gate", "report", "data-scientist"} <= nodes
    assert all(edge["source"] in nodes and edge["target"] in nodes for edge in graph["edges"])
    schemas = reader.assistants.get_schemas(GRAPH)
    assert "messages" in schemas["input_schema"]["properties"]
    assert "workspace" in schemas["context_schema"]["properties"]
    assert {"messages", "step", "outcome"} <= set(schemas["state_schema"]["properties"])
    (agent,) = reader.http.post("/agents/search", json={})
    assert agent["agent_id"] == assistant["assistant_id"]
    assert reader.http.get(f"/agents/{GRAPH}/schemas")["input_schema"] == schemas["input_schema"]


@pytest.mark.parametrize("origins", [[], ["http://localhost:3000"]], ids=["off", "configured"])
def test_cors_is_off_unless_configured(make_client, api_settings, origins: list[str]) -> None:  # noqa: ANN001
    app_client = make_client(workers=False, settings=api_settings.model_copy(update={"cors_origins": origins}))
    answer = app_client.options("/threads", headers={"Origin": "http://localhost:3000",
                                                     "Access-Control-Request-Method": "POST"})
    allowed = answer.headers.get("access-control-allow-origin")
    assert allowed == ("http://localhost:3000" if origins else None)


@pytest.mark.slow
@pytest.mark.mission
@pytest.mark.timeout(900)  # the demo's whole ML pipeline, on a machine other test runs share
def test_the_demo_mission_end_to_end_with_the_sdk_against_the_real_server(tmp_path: Path) -> None:
    """``orchestrator serve`` with the built-in planner: the SDK runs the demo mission (its workspace made from
    the template over HTTP) through its release gate; a second client following the run sees the same updates;
    the CLI and the service's own API (events over SSE, delegations, audit) read the same records."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ORCH_", "LANGGRAPH_", "LANGSMITH_"))}
    env.update({"ORCH_HOME": str(tmp_path / "home"), "ORCH_WORKSPACE_ROOTS": json.dumps([str(tmp_path / "ws")]),
                "PYTHONPATH": str(REPO)})

    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, check=check)

    key = {role: cli("keys", "create", "--role", role).stdout.strip().splitlines()[-1]
           for role in ("submitter", "approver", "auditor")}
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "serve", "--port", str(port)], env=env,
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key['submitter']}"}, timeout=60)
    try:
        wait_healthy(base, proc, lambda: (tmp_path / "serve.log").read_text()[-2000:])
        made = http.post("/api/v1/workspaces", json={"name": "demo", "template": "demo"})
        assert made.status_code == 201, made.text
        submitter, approver, auditor = (get_sync_client(url=base, api_key=key[r], timeout=600)
                                        for r in ("submitter", "approver", "auditor"))
        text = (REPO / "orchestrator" / "data" / "anomaly-batch-scoring.md").read_text()
        # The three lines of the README:
        thread = submitter.threads.create(metadata={"workspace": "demo"})
        created: list[Any] = []
        parts = submitter.runs.stream(thread["thread_id"], GRAPH, stream_mode="updates",
                                      input={"messages": [{"role": "user", "content": text}]},
                                      on_run_created=created.append)
        first = next(parts)
        assert first.event == "metadata"
        joined: list[Any] = []
        follower = threading.Thread(target=lambda: joined.extend(auditor.runs.join_stream(
            thread["thread_id"], created[0]["run_id"], stream_mode="updates")))
        follower.start()
        seen = [first, *parts]
        follower.join(timeout=120)
        assert [(p.event, p.id, p.data) for p in joined[1:]] == [(p.event, p.id, p.data) for p in seen[1:]]
        steps = ("align", "design", "implement", "evaluate", "package", "release")
        assert list(dict.fromkeys(n for n in _updated_nodes(seen) if n in steps)) == list(steps)  # evaluate twice
        args = _interrupt(seen)["value"][0]["action_request"]["args"]
        assert args["payload"]["artifacts"] and len(args["payload_sha256"]) == 64

        decide = {"decision": "approve", "payload_sha256": args["payload_sha256"], "comment": "ship it"}
        with pytest.raises(PermissionDeniedError):
            list(submitter.runs.stream(thread["thread_id"], GRAPH, command={"resume": decide}))
        with pytest.raises(ConflictError):
            list(approver.runs.stream(thread["thread_id"], GRAPH,
                                      command={"resume": {**decide, "payload_sha256": "f" * 64}}))
        resumed = list(approver.runs.stream(thread["thread_id"], GRAPH, command={"resume": decide},
                                            stream_mode="updates"))
        assert _updated_nodes(resumed)[-1] == "report" and resumed[-1].event == "end"

        final = submitter.threads.get(thread["thread_id"])
        assert final["status"] == "idle" and final["values"]["step"] == "report"
        mission_id = final["metadata"]["mission_id"]
        assert cli("audit", "verify", mission_id, check=False).returncode == 0
        shown = json.loads(cli("missions", "show", mission_id, "--json").stdout)
        assert shown["status"] == "completed"
        agents = ("data-scientist", "devops-engineer", "security-expert", "backend-developer")
        streamed = [(p.data[n]["delegation_id"], n) for p in [*seen, *resumed] if p.event == "updates"
                    for n in p.data if n in agents]
        assert streamed == [(d["id"], d["to_agent"]) for d in shown["delegations"]] and streamed

        # The same mission through the service's own API: its event stream replays the whole record, in order.
        events: list[dict[str, Any]] = []
        with http.stream("GET", f"/api/v1/missions/{mission_id}/events", timeout=120) as response:
            lines = response.iter_lines()
            while batch := sse_events(lines, limit=1):
                events += batch
        assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["data"]["payload"] == {"status": "completed"}
        assert {"ml-engineer", "data-scientist"} <= {e["data"]["agent"] for e in events if e["event"] == "message"}
        edges = http.get(f"/api/v1/missions/{mission_id}/delegations").json()["edges"]
        assert {e["to"] for e in edges} == set(agents)
        verify = http.get(f"/api/v1/missions/{mission_id}/audit/verify",
                          headers={"Authorization": f"Bearer {key['auditor']}"}).json()
        assert verify["intact"] and verify["events"] == len(events)
        assert [s["status"] for s in http.get(f"/api/v1/missions/{mission_id}").json()["steps"][:6]] == ["done"] * 6
    finally:
        http.close()
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    with session_scope(f"sqlite:///{tmp_path / 'home' / 'orchestrator.db'}") as session:
        assert session.scalar(select(Thread.mission_id).where(Thread.thread_id == thread["thread_id"])) == mission_id
        kinds = session.scalars(select(Event.kind).where(Event.mission_id == mission_id)).all()
        assert kinds.count("approval.decided") == 1  # the refused resumes decided nothing
