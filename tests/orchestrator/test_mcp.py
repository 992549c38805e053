"""MCP servers' tools in a mission: a test server written with the ``mcp`` SDK, over stdio and over streamable
HTTP on loopback, gives the lead a tool it calls under the policy layer (allowlist, redaction, production-data
approval, journal, audit event); a server that fails to start or dies mid-mission is a recorded tool error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.loader import BUILTIN_DIR, load_agents
from orchestrator.config import Settings
from orchestrator.context import RunContext
from orchestrator.db import session_scope
from orchestrator.db.models import Approval, Event, ToolCall
from orchestrator.mcp_config import McpServer
from orchestrator.mcp_tools import close_all
from orchestrator.mission import parse_mission
from orchestrator.replay import replay_mission
from orchestrator.runner import Runner
from orchestrator.toolset import tools_of
from orchestrator.views import mission_view
from tests.support.fake_chat import ScriptedChatModel, ai, call
from tests.support.mcp_server import SECRET_IN_RESULT
from tests.support.missions import MISSION_TEXT

pytest.importorskip("langchain_mcp_adapters")

REPO = Path(__file__).resolve().parents[2]
ARG_SECRET = "sk-proj-Zq8vN3xK7tR2mW9pL4cY6bH1dF5gJ0sA"
STEPS_AFTER_ALIGN = ("design", "implement", "evaluate", "package", "release", "report")


@pytest.fixture(autouse=True)
def _servers_stopped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    yield
    close_all()


def stdio_server(tmp_path: Path) -> McpServer:
    return McpServer(command=sys.executable, args=("-m", "tests.support.mcp_server", "stdio"), cwd=str(REPO),
                     env={"MCP_PID_FILE": str(tmp_path / "mcp.pid"), "MCP_CALLS_FILE": str(tmp_path / "calls.log"),
                          "PYTHONPATH": str(REPO)})


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The test server over streamable HTTP on a free loopback port, in its own process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MCP_CALLS_FILE": str(tmp_path / "calls.log"), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.mcp_server", "http", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the MCP test server did not start listening")
    yield f"http://127.0.0.1:{port}/mcp", proc
    proc.kill()
    proc.wait()


def lead_with_servers(tmp_path: Path, servers: str) -> Path:
    """An agents folder whose ml-engineer is the first-party one with ``mcpServers`` added to its front matter."""
    folder = tmp_path / "agents"
    folder.mkdir()
    text = (BUILTIN_DIR / "ml-engineer.md").read_text(encoding="utf-8")
    head, rest = text.split("\n---\n", 1)
    (folder / "ml-engineer.md").write_text(f"{head}\nmcpServers:\n{servers}\n---\n{rest}", encoding="utf-8")
    return folder


def settings_for(tmp_path: Path, url: str, **overrides: object) -> Settings:
    return Settings(home=tmp_path / "home", database_url=url, _env_file=None, mcp_call_timeout_s=10,
                    mcp_start_timeout_s=30, **overrides)


def lead_model(script: Iterator[object]):  # noqa: ANN201
    model = ScriptedChatModel(messages=script)

    def factory(agent, run):  # noqa: ANN001, ANN202
        assert agent.name == "ml-engineer", f"no script for {agent.name}"
        return model

    return factory


def tool_rows(url: str, mission_id: str) -> dict[str, ToolCall]:
    with session_scope(url) as session:
        rows = session.scalars(select(ToolCall).where(ToolCall.mission_id == mission_id)).all()
        session.expunge_all()
    return {row.call_id: row for row in rows}


def tool_events(url: str, mission_id: str) -> dict[str, dict]:
    with session_scope(url) as session:
        events = session.scalars(select(Event).where(Event.mission_id == mission_id, Event.kind == "tool.called"))
        return {e.payload["call_id"]: e.payload for e in events}


def calls_served(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_stdio_server_in_the_agents_front_matter_gives_it_a_tool_under_the_policy_layer(
        tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    folder = lead_with_servers(tmp_path, f"""  docs:
    command: {sys.executable}
    args: [-m, tests.support.mcp_server, stdio]
    cwd: {REPO}
    env: {{MCP_CALLS_FILE: {tmp_path / 'calls.log'}, PYTHONPATH: {REPO}}}""")

    def script() -> Iterator[object]:
        yield ai("", call("library_docs", "m-1", library="scikit-learn", topic="IsolationForest", api_key=ARG_SECRET))
        yield ai("Aligned on the docs.")
        yield ai("", call("read_dataset", "m-2", path="prod/customers.csv"))
        yield ai("Designed from the production sample.")
        for step in STEPS_AFTER_ALIGN[1:]:
            yield ai(f"{step} done")

    settings = settings_for(tmp_path, sqlite_url, agents_dirs=[folder])
    with Runner(settings, model_factory=lead_model(script())) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "waiting_approval"
        # The production path waits for a person: nothing was read from it yet.
        assert [line.split()[0] for line in calls_served(tmp_path)] == ["library_docs"]
        with session_scope(sqlite_url) as session:
            gate = session.scalar(select(Approval).where(Approval.mission_id == mission_id))
            assert gate.kind == "production_data" and gate.payload["tool"] == "read_dataset"
            assert gate.payload["targets"] == ["prod/customers.csv"]
        runner.decide(mission_id, decision="approved", actor="data-owner")
        assert runner.run(mission_id) == "waiting_approval"  # now at the release gate
        runner.decide(mission_id, decision="approved", actor="release-manager")
        assert runner.run(mission_id) == "completed"
    # Each call ran once on the server, although the node ran again after the approval.
    assert [line.split()[0] for line in calls_served(tmp_path)] == ["library_docs", "read_dataset"]
    rows, events = tool_rows(sqlite_url, mission_id), tool_events(sqlite_url, mission_id)
    assert rows["m-1"].status == "ok" and rows["m-1"].tool == "library_docs" and rows["m-1"].step == "align"
    assert "IsolationForest(contamination='auto')" in rows["m-1"].result
    assert SECRET_IN_RESULT not in rows["m-1"].result and "[REDACTED:github_token]" in rows["m-1"].result
    assert rows["m-2"].status == "ok" and rows["m-2"].decision == "approved" and rows["m-1"].duration_ms > 0
    assert events["m-1"]["source"] == "mcp:docs" and events["m-1"]["args"]["library"] == "scikit-learn"
    assert ARG_SECRET not in str(events["m-1"]) and events["m-1"]["args"]["api_key"].startswith("[REDACTED")
    assert SECRET_IN_RESULT not in events["m-1"]["result_preview"]
    with session_scope(sqlite_url) as session:
        assert mission_view(session, mission_id)["audit"]["intact"]
    # The journal answers a replay: the same path, and the server is not called again.
    close_all()
    report = replay_mission(settings, mission_id)
    assert report.reproduced, report.describe()
    assert [line.split()[0] for line in calls_served(tmp_path)] == ["library_docs", "read_dataset"]


def test_a_server_killed_mid_mission_is_a_recorded_tool_error_and_the_outcome_says_so(
        tmp_path: Path, sqlite_url: str, workspace: Path,
        http_server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = http_server
    os.environ["TEST_MCP_TOKEN"] = "tok-" + "x" * 20
    servers = {"docs": McpServer(url=url, headers={"Authorization": "Bearer ${TEST_MCP_TOKEN}"})}

    def script() -> Iterator[object]:
        yield ai("", call("library_docs", "h-1", library="pandas", topic="merge"))
        yield ai("Aligned.")
        proc.send_signal(signal.SIGKILL)  # the server dies between two calls of the mission
        proc.wait()
        yield ai("", call("library_docs", "h-2", library="pandas", topic="concat"))
        yield ai("", call("finish_step", "h-3", status="failed", summary="design",
                          reason="the docs server stopped answering; the interface is unverified"))
        for step in STEPS_AFTER_ALIGN[1:]:
            yield ai(f"{step} done")

    settings = settings_for(tmp_path, sqlite_url, mcp_servers=servers)
    try:
        with Runner(settings, model_factory=lead_model(script())) as runner:
            mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
            assert runner.run(mission_id) == "completed_with_risks"
    finally:
        os.environ.pop("TEST_MCP_TOKEN", None)
    rows = tool_rows(sqlite_url, mission_id)
    assert rows["h-1"].status == "ok" and "pandas: merge" in rows["h-1"].result
    assert rows["h-2"].status == "error" and "MCP server 'docs'" in rows["h-2"].result
    assert tool_events(sqlite_url, mission_id)["h-2"]["status"] == "error"
    with session_scope(sqlite_url) as session:
        view = mission_view(session, mission_id)
    design = next(s for s in view["steps"] if s["name"] == "design")
    assert design["status"] == "failed" and "docs server stopped answering" in design["reason"]
    assert view["status"] == "completed_with_risks" and "accepted by ops" in view["reason"]


def test_a_stdio_server_killed_then_called_is_an_error_then_starts_again(tmp_path: Path, sqlite_url: str,
                                                                        workspace: Path) -> None:
    pid_file = tmp_path / "mcp.pid"

    def script() -> Iterator[object]:
        yield ai("", call("library_docs", "s-1", library="numpy"))
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        time.sleep(0.5)
        yield ai("", call("library_docs", "s-2", library="numpy"))
        yield ai("Aligned without the docs.")
        for step in STEPS_AFTER_ALIGN:
            yield ai(f"{step} done")

    settings = settings_for(tmp_path, sqlite_url, mcp_servers={"docs": stdio_server(tmp_path)})
    with Runner(settings, model_factory=lead_model(script())) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed"
    rows = tool_rows(sqlite_url, mission_id)
    assert rows["s-1"].status == "ok"
    assert rows["s-2"].status == "error" and "stopped answering" in rows["s-2"].result


def test_a_server_that_does_not_start_is_a_clear_tool_error(tmp_path: Path, sqlite_url: str,
                                                            workspace: Path) -> None:
    broken = {"broken": McpServer(command=str(tmp_path / "no-such-server"))}

    def script() -> Iterator[object]:
        yield ai("", call("mcp_broken", "b-1"))
        yield ai("Aligned without the broken server.")
        for step in STEPS_AFTER_ALIGN:
            yield ai(f"{step} done")

    settings = settings_for(tmp_path, sqlite_url, mcp_servers=broken)
    with Runner(settings, model_factory=lead_model(script())) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed"
    row = tool_rows(sqlite_url, mission_id)["b-1"]
    assert row.status == "error" and "'broken' could not be started" in row.result and "no-such-server" in row.result


def test_docs_capabilities_use_a_configured_server_of_that_name_else_the_offline_lookup(
        tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    def script() -> Iterator[object]:
        yield ai("", call("library_docs", "d-1", library="scikit-learn"), call("docs_lookup", "d-2", symbol="json.dumps"))
        yield ai("Aligned.")
        for step in STEPS_AFTER_ALIGN:
            yield ai(f"{step} done")

    settings = settings_for(tmp_path, sqlite_url, mcp_servers={"Context7": stdio_server(tmp_path)})
    with Runner(settings, model_factory=lead_model(script())) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed"
    events = tool_events(sqlite_url, mission_id)
    assert events["d-1"]["source"] == "mcp:Context7" and events["d-1"]["status"] == "ok"
    # DeepWiki and MicrosoftDocs have no server here: the offline lookup answers them, and the record says so.
    assert events["d-2"]["source"] == "builtin:offline-docs" and events["d-2"]["status"] == "ok"

    agents = load_agents()
    run = RunContext(settings=settings, agents=agents, mission_id="m", mission=parse_mission(MISSION_TEXT),
                     workspace=workspace, model_factory=lead_model(iter(())))
    lead = {t.name for t in tools_of(agents["ml-engineer"], run)}
    sub = {t.name for t in tools_of(agents["devops-engineer"], run)}
    assert {"library_docs", "docs_lookup"} <= lead
    assert "library_docs" not in sub  # a docs server serves only the agents whose tools name it
    all_three = settings.model_copy(update={"mcp_servers": {name: stdio_server(tmp_path) for name in
                                                            ("Context7", "DeepWiki", "MicrosoftDocs")}})
    run = RunContext(settings=all_three, agents=agents, mission_id="m", mission=parse_mission(MISSION_TEXT),
                     workspace=workspace, model_factory=lead_model(iter(())))
    names = [t.name for t in tools_of(agents["ml-engineer"], run)]
    assert "docs_lookup" not in names
    # Three servers offer the same tools: the later ones are named after their server.
    assert {"library_docs", "DeepWiki_library_docs", "MicrosoftDocs_library_docs"} <= set(names)


def test_a_tool_of_another_agents_server_is_refused(tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    text = (BUILTIN_DIR / "devops-engineer.md").read_text(encoding="utf-8")
    head, rest = text.split("\n---\n", 1)
    (folder / "devops-engineer.md").write_text(
        f"{head}\nmcpServers:\n  - ops:\n      command: {sys.executable}\n      args: [-m, tests.support.mcp_server]\n"
        f"      cwd: {REPO}\n      env: {{PYTHONPATH: {REPO}}}\n---\n{rest}", encoding="utf-8")

    def script() -> Iterator[object]:
        yield ai("", call("read_dataset", "x-1", path="data/sample.csv"))
        yield ai("Aligned.")
        yield ai("Manual plan: the data scientist reads the sample.")  # the denial's detour
        for step in STEPS_AFTER_ALIGN:
            yield ai(f"{step} done")

    settings = settings_for(tmp_path, sqlite_url, agents_dirs=[folder])
    with Runner(settings, model_factory=lead_model(script())) as runner:
        assert "ops" in runner.agents["devops-engineer"].mcp_servers
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        runner.run(mission_id)
    row = tool_rows(sqlite_url, mission_id)["x-1"]
    assert row.status == "denied" and "not allowed for this agent" in row.result
