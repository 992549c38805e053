"""Input no database can store is refused with 422 everywhere it can come in, on SQLite and on PostgreSQL.

PostgreSQL refuses NUL in text and JSON and no driver encodes a lone surrogate: without a check such input
reaches the database and comes back as a 500. Also here: stream positions past what a column holds, and an
upload refused after unpacking, which must leave no folder behind.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import Event, Mission
from tests.api.conftest import auth
from tests.support.mission_scripts import each_step_answered
from tests.support.missions import MISSION_TEXT

NUL, SURROGATE = "\x00", "\ud800"


@pytest.fixture
def api_settings(tmp_path: Path, db_url: str) -> Settings:
    """The API on SQLite and on PostgreSQL (the conftest's is SQLite only)."""
    root = tmp_path / "workspaces"
    (root / "ws").mkdir(parents=True)
    return Settings(home=tmp_path / "home", database_url=db_url, workspace_roots=[root], runner_workers=1,
                    lease_seconds=10, _env_file=None)


@pytest.fixture
def keys(api_settings: Settings) -> dict[str, str]:
    """An admin key, named uniquely: the PostgreSQL database is shared by the whole test session."""
    from orchestrator.api.keys import create_key

    with session_scope(api_settings.resolved_database_url) as session:
        return {"admin": create_key(session, role="admin", name=f"admin-{uuid.uuid4().hex[:8]}")[1]}


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(each_step_answered, workers=False)


@pytest.fixture
def mission_id(api: TestClient, keys: dict[str, str]) -> str:
    created = api.post("/api/v1/missions", json={"text": MISSION_TEXT, "workspace": "ws"}, headers=auth(keys["admin"]))
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _json_body(value: dict) -> bytes:
    # json.dumps writes a lone surrogate as the escape "\ud800", as a client would send it.
    return json.dumps(value).encode()


def _counts(url: str) -> tuple[int, int]:
    with session_scope(url) as session:
        return session.scalar(select(func.count(Mission.id))), session.scalar(select(func.count(Event.id)))


def _requests(mission_id: str, bad: str) -> dict[str, tuple[str, str, dict]]:
    quoted = bad.encode("utf-8", "surrogatepass").hex()
    pct = "".join(f"%{quoted[i:i + 2]}" for i in range(0, len(quoted), 2))
    return {
        "mission-text": ("POST", "/api/v1/missions",
                         {"content": _json_body({"text": f"Mission: a{bad}b", "workspace": "ws"}),
                          "headers": {"Content-Type": "application/json"}}),
        "workspace": ("POST", "/api/v1/missions",
                      {"content": _json_body({"text": MISSION_TEXT, "workspace": f"w{bad}s"}),
                       "headers": {"Content-Type": "application/json"}}),
        "message": ("POST", f"/api/v1/missions/{mission_id}/messages",
                    {"content": _json_body({"text": f"hello{bad}"}), "headers": {"Content-Type": "application/json"}}),
        "json-key": ("POST", "/api/v1/missions",
                     {"content": _json_body({"text": MISSION_TEXT, "workspace": "ws", f"x{bad}": 1}),
                      "headers": {"Content-Type": "application/json"}}),
        "path-id": ("GET", f"/api/v1/missions/ab{pct}cd", {}),
        "path-id-audit": ("GET", f"/api/v1/missions/ab{pct}cd/audit/verify", {}),
        "artifact-path": ("GET", f"/api/v1/missions/{mission_id}/artifacts/a{pct}b.txt", {}),
        "status-filter": ("GET", f"/api/v1/missions?status=queued{pct}", {}),
        "agent-filter": ("GET", f"/api/v1/missions?agent=data{pct}", {}),
        "cursor": ("GET", f"/api/v1/missions?cursor=a{pct}", {}),
        "approvals-filter": ("GET", f"/api/v1/approvals?mission_id=a{pct}", {}),
        "workspace-create": ("POST", "/api/v1/workspaces",
                             {"content": _json_body({"name": f"n{bad}"}), "headers": {"Content-Type": "application/json"}}),
        "upload-text": ("POST", "/api/v1/missions/upload",
                        {"data": {"text": f"Mission: up{bad}".encode("utf-8", "surrogatepass")},
                         "files": {"archive": ("ws.zip", _zip(), "application/zip")}}),
        "thread-metadata": ("POST", "/threads",
                            {"content": _json_body({"metadata": {"k": f"v{bad}"}}),
                             "headers": {"Content-Type": "application/json"}}),
    }


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("data/a.csv", "x\n1\n")
    return buf.getvalue()


CASES = list(_requests("m", NUL))


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("case", CASES)
def test_unstorable_text_is_refused_with_422(api: TestClient, keys: dict[str, str], api_settings: Settings,
                                             mission_id: str, case: str, bad: str) -> None:
    method, url, kwargs = _requests(mission_id, bad)[case]
    before = _counts(api_settings.resolved_database_url)
    headers = {**kwargs.pop("headers", {}), **auth(keys["admin"])}
    response = api.request(method, url, headers=headers, **kwargs)
    if bad == SURROGATE and ("%" in url or case == "upload-text"):
        # Sent as bytes, a surrogate is invalid UTF-8: URL decoding makes it U+FFFD, form decoding Latin-1;
        # either is storable. Only JSON's \ud800 escape makes one.
        assert response.status_code < 500, (response.status_code, response.text)
        return
    assert response.status_code == 422, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert _counts(api_settings.resolved_database_url) == before
    root = api_settings.resolved_workspace_roots[0]
    assert sorted(p.name for p in root.iterdir()) == ["ws"]  # nothing unpacked or created


@pytest.mark.parametrize("header", ["Idempotency-Key", "Last-Event-ID", "Authorization"])
def test_a_nul_in_a_header_is_refused(api: TestClient, keys: dict[str, str], mission_id: str, header: str) -> None:
    headers = {**auth(keys["admin"]), header: "k\x00v" if header != "Authorization" else f"Bearer {keys['admin']}\x00"}
    url = f"/api/v1/missions/{mission_id}/events" if header == "Last-Event-ID" else "/api/v1/missions"
    if header == "Idempotency-Key":
        response = api.post(url, json={"text": MISSION_TEXT, "workspace": "ws"}, headers=headers)
    else:
        response = api.get(url, headers=headers)
    assert response.status_code == 422, (response.status_code, response.text)
    assert "header" in response.json()["detail"]


@pytest.mark.parametrize("where", ["query", "header", "header-negative"])
def test_stream_positions_past_any_seq_are_refused(api: TestClient, keys: dict[str, str], mission_id: str,
                                                    where: str) -> None:
    url = f"/api/v1/missions/{mission_id}/events"
    huge = "9" * 20
    if where == "query":
        response = api.get(url, params={"after": huge}, headers=auth(keys["admin"]))
    else:
        value = huge if where == "header" else "-1"
        response = api.get(url, headers={**auth(keys["admin"]), "Last-Event-ID": value})
    assert response.status_code == 422, (response.status_code, response.text)
    assert "Last-Event-ID" in response.text or "after" in response.text


def test_a_stream_position_within_range_still_works(api: TestClient, keys: dict[str, str], mission_id: str) -> None:
    api.post(f"/api/v1/missions/{mission_id}/cancel", headers=auth(keys["admin"]))
    with api.stream("GET", f"/api/v1/missions/{mission_id}/events",
                    headers={**auth(keys["admin"]), "Last-Event-ID": "1"}) as response:
        assert response.status_code == 200
        ids = [line.split(":", 1)[1].strip() for line in response.iter_lines() if line.startswith("id:")]
    assert ids and ids[0] == "2"


@pytest.mark.parametrize("text", ["   ", "\n\t"], ids=["blank", "whitespace"])
def test_a_refused_upload_leaves_no_folder(api: TestClient, keys: dict[str, str], api_settings: Settings,
                                           text: str) -> None:
    response = api.post("/api/v1/missions/upload", data={"text": text},
                        files={"archive": ("ws.zip", _zip(), "application/zip")}, headers=auth(keys["admin"]))
    assert 400 <= response.status_code < 500, response.text
    listed = api.get("/api/v1/workspaces", headers=auth(keys["admin"])).json()
    assert [w["name"] for w in listed] == ["ws"]
    assert sorted(p.name for p in api_settings.resolved_workspace_roots[0].iterdir()) == ["ws"]


def test_a_refused_archive_leaves_no_folder(api: TestClient, keys: dict[str, str], api_settings: Settings) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../escape.txt", "no")
    response = api.post("/api/v1/missions/upload", data={"text": MISSION_TEXT},
                        files={"archive": ("ws.zip", buf.getvalue(), "application/zip")}, headers=auth(keys["admin"]))
    assert response.status_code == 422, response.text
    assert [w["name"] for w in api.get("/api/v1/workspaces", headers=auth(keys["admin"])).json()] == ["ws"]
