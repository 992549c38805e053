"""Missions over HTTP: submit, follow to the release gate, approve, read the records."""

from __future__ import annotations

import io
import tarfile
import zipfile

from fastapi.testclient import TestClient

from tests.api.conftest import auth, wait_status


def _submit(client: TestClient, key: str, **extra) -> dict:  # noqa: ANN003
    response = client.post("/api/v1/missions", json={"text": "Mission: score nightly", "workspace": "ws"},
                           headers=auth(key), **extra)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_mission_runs_to_gate_then_completes_after_approval(client: TestClient, keys: dict[str, str]) -> None:
    created = _submit(client, keys["submitter"])
    assert created["status"] == "queued" and created["owner"] == "submitter"
    view = wait_status(client, keys["submitter"], created["id"], ("waiting_approval",))
    (pending,) = view["pending_approvals"]
    assert pending["kind"] == "release"

    listed = client.get(f"/api/v1/approvals?mission_id={created['id']}", headers=auth(keys["approver"])).json()
    assert [a["id"] for a in listed] == [pending["id"]]
    decided = client.post(f"/api/v1/approvals/{pending['id']}/decision", headers=auth(keys["approver"]),
                          json={"decision": "approve", "comment": "ok", "payload_sha256": pending["payload_sha256"]})
    assert decided.status_code == 200, decided.text
    assert decided.json()["decided_by"] == "approver"
    view = wait_status(client, keys["submitter"], created["id"], ("completed",))
    assert [s["name"] for s in view["steps"] if s["status"] == "done"][-1] == "report"

    graph = client.get(f"/api/v1/missions/{created['id']}/delegations", headers=auth(keys["auditor"])).json()
    assert [n["id"] for n in graph["nodes"]] == ["ml-engineer", "data-scientist"]
    assert graph["nodes"][0]["kind"] == "lead"
    (edge,) = graph["edges"]
    assert (edge["from"], edge["to"], edge["step"], edge["status"]) == ("ml-engineer", "data-scientist", "design",
                                                                         "completed")
    assert edge["result"]["summary"] == "reference data profiled"

    verify = client.get(f"/api/v1/missions/{created['id']}/audit/verify", headers=auth(keys["auditor"])).json()
    assert verify["intact"] and verify["events"] > 10
    export = client.get(f"/api/v1/missions/{created['id']}/audit/export", headers=auth(keys["auditor"]))
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = export.text.splitlines()
    assert len(lines) == verify["events"] and '"hash"' in lines[-1]
    events = client.get(f"/api/v1/missions/{created['id']}/audit", headers=auth(keys["auditor"])).json()
    assert events[-1]["hash"] == verify["head"]


def test_stale_payload_hash_is_refused(client: TestClient, keys: dict[str, str]) -> None:
    created = _submit(client, keys["admin"])
    view = wait_status(client, keys["admin"], created["id"], ("waiting_approval",))
    approval = view["pending_approvals"][0]
    stale = client.post(f"/api/v1/approvals/{approval['id']}/decision", headers=auth(keys["approver"]),
                        json={"decision": "approve", "payload_sha256": "0" * 64})
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"
    assert "payload hash" in stale.json()["detail"]
    rejected = client.post(f"/api/v1/approvals/{approval['id']}/decision", headers=auth(keys["admin"]),
                           json={"decision": "reject", "payload_sha256": approval["payload_sha256"]})
    assert rejected.status_code == 200
    assert wait_status(client, keys["admin"], created["id"], ("rejected",))["status"] == "rejected"


def test_idempotency_key(idle_client: TestClient, keys: dict[str, str]) -> None:
    headers = {**auth(keys["submitter"]), "Idempotency-Key": "k-1"}
    body = {"text": "Mission: once", "workspace": "ws"}
    first = idle_client.post("/api/v1/missions", json=body, headers=headers)
    again = idle_client.post("/api/v1/missions", json=body, headers=headers)
    other = idle_client.post("/api/v1/missions", json={**body, "text": "Mission: twice"}, headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert first.json()["id"] == again.json()["id"]
    page = idle_client.get("/api/v1/missions", headers=auth(keys["submitter"])).json()
    assert len(page["items"]) == 1


def test_list_filters_and_cursor(idle_client: TestClient, keys: dict[str, str]) -> None:
    ids = [_submit(idle_client, keys["submitter"])["id"] for _ in range(5)]
    _submit(idle_client, keys["admin"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = idle_client.get("/api/v1/missions", params=params, headers=auth(keys["submitter"])).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5  # a submitter sees only its own
    everyone = idle_client.get("/api/v1/missions", params={"status": "queued", "agent": "ml-engineer"},
                               headers=auth(keys["auditor"])).json()
    assert len(everyone["items"]) == 6
    assert idle_client.get("/api/v1/missions", params={"status": "completed"},
                           headers=auth(keys["auditor"])).json()["items"] == []
    future = idle_client.get("/api/v1/missions", params={"created_after": "2999-01-01T00:00:00Z"},
                             headers=auth(keys["auditor"])).json()
    assert future["items"] == []
    bad = idle_client.get("/api/v1/missions", params={"cursor": "nonsense"}, headers=auth(keys["auditor"]))
    assert bad.status_code == 422


def test_message_cancel_resume(idle_client: TestClient, keys: dict[str, str]) -> None:
    mission = _submit(idle_client, keys["submitter"])
    url = f"/api/v1/missions/{mission['id']}"
    message = idle_client.post(f"{url}/messages", json={"text": "use the 2-hour window"},
                               headers=auth(keys["submitter"]))
    assert message.status_code == 201 and message.json()["kind"] == "user.message"
    assert message.json()["agent"] == "submitter"
    assert idle_client.post(f"{url}/resume", headers=auth(keys["submitter"])).json()["status"] == "queued"
    assert idle_client.post(f"{url}/cancel", headers=auth(keys["submitter"])).json()["status"] == "cancelled"
    again = idle_client.post(f"{url}/resume", headers=auth(keys["submitter"]))
    assert again.status_code == 409 and again.json()["title"] == "Conflict"


def test_validation_errors_name_the_field(idle_client: TestClient, keys: dict[str, str]) -> None:
    response = idle_client.post("/api/v1/missions", json={"workspace": "ws"}, headers=auth(keys["admin"]))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "body.text"
    outside = idle_client.post("/api/v1/missions", json={"text": "Mission: x", "workspace": "/etc"},
                               headers=auth(keys["admin"]))
    assert outside.status_code == 422 and "workspace roots" in outside.json()["detail"]
    missing = idle_client.get("/api/v1/missions/nope", headers=auth(keys["admin"]))
    assert missing.status_code == 404 and missing.json()["status"] == 404


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _targz_with_symlink() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(info)
    return buf.getvalue()


def test_upload_archive(idle_client: TestClient, keys: dict[str, str], api_settings) -> None:  # noqa: ANN001
    good = idle_client.post("/api/v1/missions/upload", data={"text": "Mission: from archive"},
                            files={"archive": ("ws.zip", _zip({"data/a.csv": b"x,y\n1,2\n"}), "application/zip")},
                            headers=auth(keys["submitter"]))
    assert good.status_code == 201, good.text
    workspace = good.json()["workspace"]
    assert open(f"{workspace}/data/a.csv").read() == "x,y\n1,2\n"
    for name, data in [("evil.zip", _zip({"../escape.txt": b"x"})), ("abs.zip", _zip({"/abs.txt": b"x"})),
                       ("link.tar.gz", _targz_with_symlink()), ("notes.rar", b"rar")]:
        bad = idle_client.post("/api/v1/missions/upload", data={"text": "Mission: x"},
                               files={"archive": (name, data, "application/octet-stream")},
                               headers=auth(keys["submitter"]))
        assert bad.status_code == 422, (name, bad.text)
    assert not (api_settings.resolved_workspace_roots[0].parent / "escape.txt").exists()


def test_artifacts_tasks_tool_calls_agents_workspaces(idle_client: TestClient, keys: dict[str, str],
                                                      api_settings) -> None:  # noqa: ANN001
    root = api_settings.resolved_workspace_roots[0]
    (root / "ws" / "report.html").write_text("<h1>report</h1>")
    (root / "ws" / "model.txt").write_text("weights")
    mission = _submit(idle_client, keys["submitter"])
    base = f"/api/v1/missions/{mission['id']}"
    report = idle_client.get(f"{base}/artifacts/report.html", headers=auth(keys["submitter"]))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "inline" in report.headers["content-disposition"]
    plain = idle_client.get(f"{base}/artifacts/model.txt", headers=auth(keys["submitter"]))
    assert plain.text == "weights" and "attachment" in plain.headers["content-disposition"]
    escape = idle_client.get(f"{base}/artifacts/..%2F..%2Fhome%2Forchestrator.db", headers=auth(keys["submitter"]))
    assert escape.status_code == 404
    for part in ("artifacts", "tasks", "tool-calls"):
        assert idle_client.get(f"{base}/{part}", headers=auth(keys["submitter"])).json() == []
    agents = idle_client.get("/api/v1/agents", headers=auth(keys["auditor"])).json()
    lead = next(a for a in agents if a["name"] == "ml-engineer")
    assert len(lead["sha256"]) == 64 and "bash" in lead["tools"]
    created = idle_client.post("/api/v1/workspaces", json={"name": "fresh", "template": "empty"},
                               headers=auth(keys["submitter"]))
    assert created.status_code == 201
    names = [w["name"] for w in idle_client.get("/api/v1/workspaces", headers=auth(keys["submitter"])).json()]
    assert {"ws", "fresh"} <= set(names)
    assert idle_client.post("/api/v1/workspaces", json={"name": "fresh"}, headers=auth(keys["admin"])).status_code == 409
    assert idle_client.post("/api/v1/workspaces", json={"name": "../x"}, headers=auth(keys["admin"])).status_code == 422


def test_health_ready_metrics_me_and_web(idle_client: TestClient, keys: dict[str, str]) -> None:
    assert idle_client.get("/healthz").json()["status"] == "ok"
    assert idle_client.get("/readyz").json()["status"] == "ready"  # open, like /healthz: probes carry no key
    _submit(idle_client, keys["submitter"])
    metrics = idle_client.get("/metrics", headers=auth(keys["auditor"])).text
    assert 'orchestrator_missions{status="queued"} 1.0' in metrics
    assert "orchestrator_approvals_waiting 0.0" in metrics
    me = idle_client.get("/api/v1/me", headers=auth(keys["approver"])).json()
    assert (me["name"], me["role"]) == ("approver", "approver")
    page = idle_client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
