"""The real server (uvicorn subprocess): a mission end to end over HTTP and SSE; killed and restarted mid-run.

The demo mission on the real server, with the built-in planner, runs in ``test_langgraph_sdk.py`` (driven by the
SDK, then read back over this API) and ``tests/web/test_mission_flow.py`` (from the page).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from orchestrator.db import session_scope
from orchestrator.db.models import Event, ToolCall
from tests.api.conftest import sse_events
from tests.support.servers import free_port, wait_healthy

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, tmp: Path, scenario: str) -> None:
        self.tmp, self.scenario, self.port = tmp, scenario, free_port()
        self.url = f"sqlite:///{tmp / 'orchestrator.db'}"
        (tmp / "workspaces" / "ws").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "ORCH_HOME": str(tmp / "home"), "ORCH_DATABASE_URL": self.url,
                    "ORCH_WORKSPACE_ROOTS": json.dumps([str(tmp / "workspaces")]), "ORCH_RUNNER_WORKERS": "2",
                    "ORCH_LEASE_SECONDS": "30", "ORCH_ALLOW_UNSANDBOXED_SHELL": "true", "PYTHONPATH": str(REPO)}
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def key(self, role: str) -> str:
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "keys", "create", "--role", role],
                             env=self.env, cwd=REPO, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        self.log = open(self.tmp / f"server-{time.time_ns()}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.serve_scripted", "--scenario",
                                      self.scenario, "--port", str(self.port)], env=self.env, cwd=REPO,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_healthy(self.base, self.proc, lambda: Path(self.log.name).read_text()[-2000:])

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def make(scenario: str) -> Server:
        server = Server(tmp_path, scenario)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _wait(client: httpx.Client, mission_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/missions/{mission_id}").json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, body["status"]
        time.sleep(0.2)


def test_end_to_end_over_http(server_factory) -> None:  # noqa: ANN001
    server = server_factory("handoff")
    admin = server.key("admin")
    server.start()
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as client:
        created = client.post("/api/v1/missions", json={"text": "Mission: e2e", "workspace": "ws"})
        assert created.status_code == 201
        mission_id = created.json()["id"]
        events: list[dict] = []
        with client.stream("GET", f"/api/v1/missions/{mission_id}/events") as response:
            lines = response.iter_lines()
            while batch := sse_events(lines, limit=1):
                events += batch
                if batch[0]["event"] == "approval.requested":
                    gate = batch[0]["data"]["payload"]
                    decided = client.post(f"/api/v1/approvals/{gate['approval_id']}/decision",
                                          json={"decision": "approve", "payload_sha256": gate["payload_sha256"]})
                    assert decided.status_code == 200
        assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["data"]["payload"] == {"status": "completed"}
        graph = client.get(f"/api/v1/missions/{mission_id}/delegations").json()
        assert [e["to"] for e in graph["edges"]] == ["data-scientist"]
        verify = client.get(f"/api/v1/missions/{mission_id}/audit/verify").json()
        assert verify["intact"] and verify["events"] == len(events)


def test_killed_server_resumes_without_running_a_tool_twice(server_factory) -> None:  # noqa: ANN001
    server = server_factory("slow")
    admin = server.key("admin")
    server.start()
    ran_log = server.tmp / "workspaces" / "ws" / "ran.log"
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as client:
        mission_id = client.post("/api/v1/missions", json={"text": "Mission: crash", "workspace": "ws"}).json()["id"]
        deadline = time.monotonic() + 60
        while not (ran_log.exists() and ran_log.read_text() == "one\n"):  # b1 done, b2 sleeping
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        server.kill()
        assert client.get  # the server is gone; start it again on the same database
        server.start()
        view = _wait(client, mission_id, ("waiting_approval",))
        gate = view["pending_approvals"][0]
        client.post(f"/api/v1/approvals/{gate['id']}/decision",
                    json={"decision": "approve", "payload_sha256": gate["payload_sha256"]})
        _wait(client, mission_id, ("completed",))
        assert client.get(f"/api/v1/missions/{mission_id}/audit/verify").json()["intact"]
    # b1 was not run again; b2 (a shell command killed mid-run: its effects are not keyed by the call) was
    # reported to the model as interrupted, not run a second time.
    assert ran_log.read_text() == "one\n"
    with session_scope(server.url) as session:
        calls = session.execute(select(ToolCall.call_id, func.count()).where(ToolCall.mission_id == mission_id)
                                .group_by(ToolCall.call_id)).all()
        assert dict(calls) == {"b1": 1, "b2": 1}
        recorded = session.scalars(select(Event.payload).where(Event.mission_id == mission_id,
                                                               Event.kind == "tool.called")).all()
        assert sorted((p["call_id"], p["status"]) for p in recorded) == [("b1", "ok"), ("b2", "interrupted")]
