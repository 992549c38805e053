"""Each role against each route: allowed or refused as designed; no key, a bad key, a revoked key refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from orchestrator.api.keys import revoke_key
from orchestrator.db import session_scope
from tests.api.conftest import ROLES, auth

S, P, AU, AD = "submitter", "approver", "auditor", "admin"
EVERYONE = set(ROLES)
# (method, path, json body, roles allowed). {own}: the submitter's mission; {other}: the admin's.
ROUTES = [
    ("POST", "/api/v1/missions", {"text": "Mission: x", "workspace": "ws"}, {S, AD}),
    ("GET", "/api/v1/missions", None, EVERYONE),
    ("GET", "/api/v1/missions/{own}", None, EVERYONE),
    ("GET", "/api/v1/missions/{other}", None, {P, AU, AD}),
    ("POST", "/api/v1/missions/{own}/messages", {"text": "hi"}, {S, AD}),
    ("POST", "/api/v1/missions/{other}/messages", {"text": "hi"}, {AD}),
    ("POST", "/api/v1/missions/{own}/resume", None, {S, AD}),
    ("POST", "/api/v1/missions/{other}/cancel", None, {AD}),
    ("GET", "/api/v1/missions/{own_done}/events", None, EVERYONE),  # finished: the stream ends
    ("GET", "/api/v1/missions/{own}/delegations", None, EVERYONE),
    ("GET", "/api/v1/missions/{other}/delegations", None, {P, AU, AD}),
    ("GET", "/api/v1/missions/{own}/audit", None, {AU, AD}),
    ("GET", "/api/v1/missions/{own}/audit/verify", None, {AU, AD}),
    ("GET", "/api/v1/missions/{own}/audit/export", None, {AU, AD}),
    ("GET", "/api/v1/missions/{own}/artifacts", None, EVERYONE),
    ("GET", "/api/v1/missions/{own}/tasks", None, EVERYONE),
    ("GET", "/api/v1/missions/{own}/tool-calls", None, EVERYONE),
    ("GET", "/api/v1/approvals", None, {P, AU, AD}),
    ("POST", "/api/v1/approvals/{approval}/decision", {"decision": "approve", "payload_sha256": "{sha}"}, {P, AD}),
    ("GET", "/api/v1/agents", None, EVERYONE),
    ("GET", "/api/v1/workspaces", None, EVERYONE),
    ("POST", "/api/v1/workspaces", {"name": "new-{role}"}, {S, AD}),
    ("GET", "/api/v1/me", None, EVERYONE),
    ("GET", "/metrics", None, {AU, AD}),
]


@pytest.fixture
def world(idle_client: TestClient, keys: dict[str, str], api_settings) -> dict[str, str]:  # noqa: ANN001
    from orchestrator.db.approvals import request_approval

    own = idle_client.post("/api/v1/missions", json={"text": "Mission: own", "workspace": "ws"},
                           headers=auth(keys[S])).json()["id"]
    other = idle_client.post("/api/v1/missions", json={"text": "Mission: other", "workspace": "ws"},
                             headers=auth(keys[AD])).json()["id"]
    own_done = idle_client.post("/api/v1/missions", json={"text": "Mission: done", "workspace": "ws"},
                                headers=auth(keys[S])).json()["id"]
    idle_client.post(f"/api/v1/missions/{own_done}/cancel", headers=auth(keys[S]))
    with session_scope(api_settings.resolved_database_url) as session:
        row = request_approval(session, mission_id=other, key="release", kind="release", step="release",
                               agent="ml-engineer", question="ok?", payload={"plan": "p"})
        approval, sha = str(row.id), row.payload_sha256
    return {"own": own, "own_done": own_done, "other": other, "approval": approval, "sha": sha}


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p.split('?')[0]}" for m, p, _, _ in ROUTES])
def test_role_matrix(idle_client: TestClient, keys: dict[str, str], world: dict[str, str], method: str, path: str,
                     body: dict | None, allowed: set[str]) -> None:
    def fill(value: str, role: str) -> str:
        return value.format(role=role, **world)

    unauthenticated = idle_client.request(method, fill(path, "anon"), json=body)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    bogus = idle_client.request(method, fill(path, "anon"), json=body, headers=auth("orch_nope_nope"))
    assert bogus.status_code == 401
    for role in ROLES:
        filled = {k: fill(v, role) for k, v in body.items()} if body else None
        response = idle_client.request(method, fill(path, role), json=filled, headers=auth(keys[role]))
        if role in allowed:
            # Allowed: not refused (a second decision on the same gate is a 409 conflict, not a refusal).
            assert response.status_code not in (401, 403, 404), (role, response.status_code, response.text)
        else:
            assert response.status_code in (403, 404), (role, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"


def test_revoked_key_is_refused(idle_client: TestClient, keys: dict[str, str], api_settings) -> None:  # noqa: ANN001
    assert idle_client.get("/api/v1/me", headers=auth(keys[AU])).status_code == 200
    with session_scope(api_settings.resolved_database_url) as session:
        revoke_key(session, name_or_prefix=AU)
    assert idle_client.get("/api/v1/me", headers=auth(keys[AU])).status_code == 401


def test_only_health_and_page_are_open(idle_client: TestClient) -> None:
    assert idle_client.get("/healthz").status_code == 200
    assert idle_client.get("/").status_code == 200
    schema = idle_client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        if path in ("/healthz", "/readyz"):  # probes: a load balancer or a kubelet carries no key
            continue
        for method in operations:
            assert idle_client.request(method.upper(), path.replace("{", "").replace("}", "")).status_code == 401, path


def test_dev_mode_only_on_loopback(api_settings) -> None:  # noqa: ANN001
    from orchestrator.api.app import create_app
    from orchestrator.errors import ConfigError

    with pytest.raises(ConfigError, match="loopback"):
        create_app(api_settings.model_copy(update={"dev_no_auth": True, "host": "0.0.0.0"}), start_workers=False)
    app = create_app(api_settings.model_copy(update={"dev_no_auth": True}), start_workers=False)
    with TestClient(app) as client:
        me = client.get("/api/v1/me").json()
        assert (me["name"], me["role"]) == ("dev", "admin")
