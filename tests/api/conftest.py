"""API fixtures: an app on a temporary home with scripted models, API keys for each role, helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.api.keys import create_key
from orchestrator.config import Settings
from orchestrator.db import session_scope
from tests.support.mission_scripts import PerMissionScripts, each_step_answered, with_handoff

ROLES = ("submitter", "approver", "auditor", "admin")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Schemathesis names each operation's test ``test_x[GET /path]``, but under pytest 9.2 (node ids built from
    ``originalname``) all of them share the id ``test_x``: a parallel run grouping tests by id would run one of the
    54 and drop the rest. Give each its own id again, the one its name says."""
    originalname = getattr(item, "originalname", item.name)
    if item.name != originalname and item.nodeid.endswith(f"::{originalname}") and hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(f"{item.nodeid[: -len(originalname)]}{item.name}")


@pytest.fixture
def api_settings(tmp_path: Path, sqlite_url: str) -> Settings:
    root = tmp_path / "workspaces"
    (root / "ws").mkdir(parents=True)
    return Settings(home=tmp_path / "home", database_url=sqlite_url, workspace_roots=[root], runner_workers=3,
                    lease_seconds=10, _env_file=None)


@pytest.fixture
def keys(api_settings: Settings) -> dict[str, str]:
    """One API key per role, named after the role."""
    out = {}
    with session_scope(api_settings.resolved_database_url) as session:
        for role in ROLES:
            out[role] = create_key(session, role=role, name=role)[1]
    return out


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def make_client(api_settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Build a started TestClient: ``make_client(script=with_handoff, workers=True)``."""
    opened: list[TestClient] = []

    def make(script: Callable[[], dict[str, Any]] = with_handoff, *, workers: bool = True,
             settings: Settings | None = None) -> TestClient:
        app = create_app(settings or api_settings, model_factory=PerMissionScripts(script).factory,
                         start_workers=workers)
        app.state.service.extras["sse_poll_s"] = 0.05
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(with_handoff)


@pytest.fixture
def idle_client(make_client: Callable[..., TestClient]) -> TestClient:
    """No runner pool: missions stay queued."""
    return make_client(each_step_answered, workers=False)


def wait_status(client: TestClient, key: str, mission_id: str, statuses: tuple[str, ...],
                timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/missions/{mission_id}", headers=auth(key)).json()
        if body.get("status") in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"mission {mission_id} still {body.get('status')} after {timeout}s: {body}")
        time.sleep(0.05)


def sse_events(lines: Iterator[str], *, limit: int | None = None) -> list[dict[str, Any]]:
    """Parse SSE lines into ``{id, event, data}`` dicts (pings and comments skipped)."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in current:
                current["data"] = json.loads(current["data"])
                out.append(current)
                if limit is not None and len(out) >= limit:
                    return out
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        current[field] = value[1:] if value.startswith(" ") else value
    return out
