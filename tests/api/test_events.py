"""The SSE stream: a whole mission in order, and a reconnect that gets exactly what it missed."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import auth, sse_events, wait_status


def _run_to_end(client: TestClient, keys: dict[str, str]) -> str:
    mission_id = client.post("/api/v1/missions", json={"text": "Mission: stream", "workspace": "ws"},
                             headers=auth(keys["submitter"])).json()["id"]
    view = wait_status(client, keys["submitter"], mission_id, ("waiting_approval",))
    approval = view["pending_approvals"][0]
    client.post(f"/api/v1/approvals/{approval['id']}/decision", headers=auth(keys["approver"]),
                json={"decision": "approve", "payload_sha256": approval["payload_sha256"]})
    return mission_id


def test_stream_is_complete_and_ordered_and_ends(client: TestClient, keys: dict[str, str]) -> None:
    mission_id = client.post("/api/v1/missions", json={"text": "Mission: stream", "workspace": "ws"},
                             headers=auth(keys["submitter"])).json()["id"]
    url = f"/api/v1/missions/{mission_id}/events"
    seen: list[dict] = []
    with client.stream("GET", url, headers=auth(keys["submitter"])) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        for event in iter(lambda: sse_events(lines, limit=1), []):
            seen += event
            if event[0]["event"] == "approval.requested":  # decide the gate while following live
                approval = event[0]["data"]["payload"]
                decided = client.post(f"/api/v1/approvals/{approval['approval_id']}/decision",
                                      headers=auth(keys["approver"]),
                                      json={"decision": "approve", "payload_sha256": approval["payload_sha256"]})
                assert decided.status_code == 200
    audit = client.get(f"/api/v1/missions/{mission_id}/audit", headers=auth(keys["auditor"])).json()
    assert [int(e["id"]) for e in seen] == [e["seq"] for e in audit] == list(range(1, len(audit) + 1))
    assert [e["event"] for e in seen] == [e["kind"] for e in audit]
    first = seen[0]["data"]
    assert set(first) == {"seq", "mission_id", "kind", "agent", "step", "delegation_id", "ts", "payload"}
    assert seen[-1]["data"]["payload"]["status"] == "completed"


def test_reconnect_with_last_event_id_gets_exactly_the_rest(client: TestClient, keys: dict[str, str]) -> None:
    mission_id = _run_to_end(client, keys)
    wait_status(client, keys["submitter"], mission_id, ("completed",))
    url = f"/api/v1/missions/{mission_id}/events"
    with client.stream("GET", url, headers=auth(keys["submitter"])) as response:
        first = sse_events(response.iter_lines(), limit=7)
    with client.stream("GET", url, headers={**auth(keys["submitter"]), "Last-Event-ID": first[-1]["id"]}) as response:
        rest = sse_events(response.iter_lines())
    total = client.get(f"/api/v1/missions/{mission_id}/audit/verify", headers=auth(keys["auditor"])).json()["events"]
    seqs = [int(e["id"]) for e in first + rest]
    assert seqs == list(range(1, total + 1))


def test_reconnect_while_live(client: TestClient, keys: dict[str, str]) -> None:
    mission_id = client.post("/api/v1/missions", json={"text": "Mission: live", "workspace": "ws"},
                             headers=auth(keys["submitter"])).json()["id"]
    url = f"/api/v1/missions/{mission_id}/events"
    with client.stream("GET", url, headers=auth(keys["submitter"])) as response:
        first = sse_events(response.iter_lines(), limit=3)
    view = wait_status(client, keys["submitter"], mission_id, ("waiting_approval",))
    approval = view["pending_approvals"][0]
    client.post(f"/api/v1/approvals/{approval['id']}/decision", headers=auth(keys["approver"]),
                json={"decision": "approve", "payload_sha256": approval["payload_sha256"]})
    with client.stream("GET", url, headers={**auth(keys["submitter"]), "Last-Event-ID": first[-1]["id"]}) as response:
        rest = sse_events(response.iter_lines())
    assert [int(e["id"]) for e in first + rest] == list(range(1, len(first) + len(rest) + 1))
    assert rest[-1]["data"]["payload"]["status"] == "completed"


def test_stream_of_someone_elses_mission_is_404(idle_client: TestClient, keys: dict[str, str]) -> None:
    mission_id = idle_client.post("/api/v1/missions", json={"text": "Mission: mine", "workspace": "ws"},
                                  headers=auth(keys["admin"])).json()["id"]
    response = idle_client.get(f"/api/v1/missions/{mission_id}/events", headers=auth(keys["submitter"]))
    assert response.status_code == 404
