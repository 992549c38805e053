"""What keeps authenticated requests cheap, checked as behaviour (bench/api_latency.py measures the speed):
key lookups are cached yet a revoked key is refused, a read writes nothing, list pages are keyset pages read
from an index."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text, update

from orchestrator.api.app import create_app
from orchestrator.api.keys import Caller, KeyCache, create_key, revoke_key
from orchestrator.api.routers.missions import page_query
from orchestrator.config import Settings
from orchestrator.db import engine_for, session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.models import ApiKey, Delegation, Mission
from tests.api.conftest import auth


@pytest.fixture
def statements(sqlite_url: str) -> Iterator[list[str]]:
    """Every SQL statement the process sends to the test database while the test runs."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        seen.append(" ".join(statement.split()))

    engine = engine_for(sqlite_url)
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE")
            or s.upper().startswith("BEGIN IMMEDIATE")]


def _key_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "api_keys" in s]


def test_reads_with_a_known_key_write_nothing_and_read_no_key_row(
        idle_client: TestClient, keys: dict[str, str], statements: list[str]) -> None:
    idle_client.app.state.service.keys = KeyCache(recheck_s=3600)  # no revocation re-check inside this test
    headers = auth(keys["submitter"])
    created = idle_client.post("/api/v1/missions", json={"text": "Mission: cache", "workspace": "ws"},
                               headers=headers)
    assert created.status_code == 201, created.text
    mission_id = created.json()["id"]
    assert idle_client.get("/api/v1/me", headers=headers).status_code == 200  # the key is cached from here on
    statements.clear()
    for _ in range(3):
        assert idle_client.get("/api/v1/me", headers=headers).status_code == 200
        assert idle_client.get(f"/api/v1/missions/{mission_id}", headers=headers).status_code == 200
        page = idle_client.get("/api/v1/missions?limit=20", headers=headers)
        assert page.status_code == 200 and [m["id"] for m in page.json()["items"]] == [mission_id]
    assert page.json()["items"] == [created.json()], "a list line says what the create answered"
    assert statements, "the reads ran no SQL at all: the listener is not on the app's engine"
    assert _writes(statements) == []
    assert _key_reads(statements) == []


def test_a_key_revoked_in_this_process_is_refused_at_once(idle_client: TestClient, keys: dict[str, str],
                                                          api_settings: Settings) -> None:
    idle_client.app.state.service.keys = KeyCache(recheck_s=3600)
    headers = auth(keys["auditor"])
    assert idle_client.get("/api/v1/me", headers=headers).status_code == 200
    assert idle_client.get("/api/v1/me", headers=headers).status_code == 200  # from the cache
    with session_scope(api_settings.resolved_database_url) as session:
        revoke_key(session, name_or_prefix="auditor")
    refused = idle_client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the API key is unknown or revoked"
    assert idle_client.get("/api/v1/me", headers=auth(keys["admin"])).status_code == 200


def test_a_revocation_rolled_back_keeps_the_key(idle_client: TestClient, keys: dict[str, str],
                                                api_settings: Settings) -> None:
    headers = auth(keys["approver"])
    assert idle_client.get("/api/v1/me", headers=headers).status_code == 200
    with pytest.raises(RuntimeError), session_scope(api_settings.resolved_database_url) as session:
        revoke_key(session, name_or_prefix="approver")
        raise RuntimeError("the revoking transaction fails")
    assert idle_client.get("/api/v1/me", headers=headers).status_code == 200


def test_reads_beyond_the_thread_and_connection_pools_all_answer(idle_client: TestClient,
                                                                   keys: dict[str, str]) -> None:
    """More requests at once than worker threads (40) and pooled connections (15): none may wait forever
    for a connection that only a closing session, itself waiting for a thread, would give back."""
    import anyio
    import httpx

    headers = auth(keys["admin"])
    mission_id = idle_client.post("/api/v1/missions", json={"text": "Mission: crowd", "workspace": "ws"},
                                  headers=headers).json()["id"]
    paths = [f"/api/v1/missions/{mission_id}", "/api/v1/missions?limit=20", "/api/v1/me"] * 40
    statuses: list[int] = []

    async def crowd() -> None:
        transport = httpx.ASGITransport(app=idle_client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
            async def one(path: str) -> None:
                statuses.append((await client.get(path)).status_code)

            # Far longer than any answer needs: reaching it means the requests wait on each other for good.
            with anyio.fail_after(120):
                async with anyio.create_task_group() as group:
                    for path in paths:
                        group.start_soon(one, path)

    anyio.run(crowd)
    assert statuses == [200] * len(paths)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_revoked_by_another_process_is_refused_after_the_recheck_interval(db_url: str) -> None:
    with session_scope(db_url) as session:
        _row, key = create_key(session, role="approver", name=f"other-{uuid.uuid4().hex[:8]}")
    clock = _Clock()
    cache = KeyCache(recheck_s=1.0, clock=clock)
    with session_scope(db_url, readonly=True) as session:
        assert cache.lookup(session, key=key) == Caller(name=_row.name, role="approver")
    assert cache.cached(key) is not None
    # Another process revokes it: a plain UPDATE on its own connection, nothing this process hears about.
    with engine_for(db_url).begin() as conn:
        conn.execute(update(ApiKey).where(ApiKey.name == _row.name).values(revoked_at=datetime.now(UTC)))
    clock.now += 0.5
    assert cache.cached(key) is not None, "within the re-check interval the cache answers (the documented bound)"
    clock.now += 0.6
    assert cache.cached(key) is None, "past the interval the cache must ask the database"
    with session_scope(db_url, readonly=True) as session:
        assert cache.lookup(session, key=key) is None
    assert cache.cached(key) is None


def test_entries_expire_and_the_cache_is_bounded(sqlite_url: str) -> None:
    with session_scope(sqlite_url) as session:
        made = [create_key(session, role="submitter", name=f"k{i}")[1] for i in range(3)]
    clock = _Clock()
    cache = KeyCache(ttl_s=10, recheck_s=100, max_entries=2, clock=clock)
    with session_scope(sqlite_url, readonly=True) as session:
        for key in made:
            assert cache.lookup(session, key=key) is not None
        assert cache.lookup(session, key="orch_0000_unknown") is None
    assert cache.cached(made[0]) is None  # the least recently used went first
    assert cache.cached(made[1]) is not None and cache.cached(made[2]) is not None
    assert cache.cached("orch_0000_unknown") is None  # unknown keys are never cached
    clock.now += 11
    assert cache.cached(made[2]) is None


# -- keyset pages ----------------------------------------------------------------------------------------------


@pytest.fixture
def page_client(tmp_path: Path, db_url: str) -> Iterator[TestClient]:
    """An app without runner threads on SQLite and on PostgreSQL."""
    settings = Settings(home=tmp_path / "home", database_url=db_url, workspace_roots=[tmp_path], _env_file=None)
    with TestClient(create_app(settings, start_workers=False), raise_server_exceptions=False) as client:
        yield client


def _seed(url: str, *, owner: str, count: int, base: datetime, ties: int) -> list[tuple[datetime, str]]:
    """``count`` missions of ``owner`` from ``base`` on, the first ``ties`` of them at the very same instant."""
    made = []
    with session_scope(url) as session:
        for i in range(count):
            mission = create_mission(session, text=f"Mission: page {i}", spec={"objective": f"page {i}"},
                                     workspace="/tmp/ws", owner=owner)
            created = base if i < ties else base + timedelta(seconds=i, microseconds=i)
            session.execute(update(Mission).where(Mission.id == mission.id).values(created_at=created))
            made.append((created, mission.id))
    return sorted(made, reverse=True)


def _walk(client: TestClient, headers: dict[str, str], query: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        url = f"/api/v1/missions?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [m["id"] for m in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the pages never ended")


def test_pages_walk_every_mission_once_newest_first(page_client: TestClient, db_url: str) -> None:
    client = page_client
    with session_scope(db_url) as session:
        admin = create_key(session, role="admin", name=f"admin-{uuid.uuid4().hex[:8]}")[1]
    # Far in the future, so that other tests' missions (PostgreSQL is shared) stay outside the window.
    base = datetime(2099, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 10_000)
    expected = _seed(db_url, owner="pager", count=23, base=base, ties=7)
    window = f"created_after={(base - timedelta(seconds=1)).isoformat()}".replace("+", "%2B")
    walked = _walk(client, auth(admin), f"limit=4&{window}")
    assert walked == [mission_id for _, mission_id in expected]

    # A mission created between two pages neither repeats one nor hides one from the pages after it.
    first = client.get(f"/api/v1/missions?limit=5&{window}", headers=auth(admin)).json()
    assert first["items"][0]["objective"] == "page 22" and first["items"][0]["owner"] == "pager"
    _seed(db_url, owner="pager", count=1, base=base + timedelta(hours=1), ties=1)
    rest = _walk(client, auth(admin), f"limit=5&{window}&cursor={first['next_cursor']}")
    assert [m["id"] for m in first["items"]] + rest == [mission_id for _, mission_id in expected]


def test_pages_keep_their_filters_and_bounds(page_client: TestClient, db_url: str) -> None:
    client = page_client
    owner = f"sub-{uuid.uuid4().hex[:8]}"
    with session_scope(db_url) as session:
        submitter = create_key(session, role="submitter", name=owner)[1]
    base = datetime(2098, 6, 1, 12, 0, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 10_000)
    mine = _seed(db_url, owner=owner, count=9, base=base, ties=3)
    _seed(db_url, owner=f"else-{owner}", count=4, base=base, ties=2)
    with session_scope(db_url) as session:
        session.execute(update(Mission).where(Mission.id.in_([m for _, m in mine[:4]])).values(status="cancelled"))

    assert _walk(client, auth(submitter), "limit=2") == [m for _, m in mine]  # only the submitter's own
    assert _walk(client, auth(submitter), "limit=3&status=cancelled") == [m for _, m in mine[:4]]
    # A bound in another time zone means the same instant: 14:00+02:00 is 12:00 UTC.
    local = (base + timedelta(seconds=4)).astimezone(timezone(timedelta(hours=2))).isoformat().replace("+", "%2B")
    assert _walk(client, auth(submitter), f"limit=2&created_after={local}") == [
        m for created, m in mine if created > base + timedelta(seconds=4)]

    # By agent: a mission led by it (its spec) or one it was delegated to, each once, across pages.
    with session_scope(db_url) as session:
        session.execute(update(Mission).where(Mission.id == mine[1][1]).values(spec={"agent": "data-scientist"}))
        session.add(Delegation(mission_id=mine[5][1], from_agent="ml-engineer", to_agent="data-scientist",
                               step="evaluate", brief={}, from_sha256="0" * 64, to_sha256="0" * 64))
        session.add(Delegation(mission_id=mine[5][1], from_agent="data-scientist", to_agent="ml-engineer",
                               step="evaluate", brief={}, from_sha256="0" * 64, to_sha256="0" * 64))
    assert _walk(client, auth(submitter), "limit=1&agent=data-scientist") == [mine[1][1], mine[5][1]]

    broken = client.get("/api/v1/missions?cursor=not-a-cursor", headers=auth(submitter))
    assert broken.status_code == 422
    assert broken.headers["content-type"] == "application/problem+json"
    assert "cursor" in broken.json()["detail"]


_FILTERS = {
    "newest first": {},
    "after a cursor": {"after": (datetime(2026, 1, 1, tzinfo=UTC), "abc")},
    "a submitter's own": {"caller": Caller(name="s", role="submitter"),
                          "after": (datetime(2026, 1, 1, tzinfo=UTC), "abc")},
    "one status": {"status": "queued", "after": (datetime(2026, 1, 1, tzinfo=UTC), "abc")},
    "an agent": {"agent": "data-scientist", "after": (datetime(2026, 1, 1, tzinfo=UTC), "abc")},
    "a time window": {"created_after": datetime(2025, 1, 1, tzinfo=UTC),
                      "created_before": datetime(2027, 1, 1, tzinfo=UTC)},
}


@pytest.mark.parametrize("filters", list(_FILTERS.values()), ids=list(_FILTERS))
def test_each_page_is_read_from_an_index_in_order(db_url: str, filters: dict) -> None:
    stmt, values = page_query(**{"caller": Caller(name="a", role="admin"), "limit": 20, **filters})
    engine = engine_for(db_url)
    compiled = stmt.compile(engine)
    params = compiled.construct_params(values)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            positional = tuple(params[name] for name in compiled.positiontup or ())
            plan = " | ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional))
            assert "USING INDEX ix_missions_" in plan and "TEMP B-TREE" not in plan, plan
        else:
            # With sorting and table scans priced out, a plan without a Sort node shows an index gives the order.
            conn.execute(text("SET LOCAL enable_sort = off"))
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " | ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}", params))
            assert "Index Scan" in plan and "ix_missions_" in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("tamper", ["edit an event", "delete the last event", "edit the mission row"])
def test_a_read_reuses_the_audit_verdict_yet_a_tampered_chain_shows_at_once(
        idle_client: TestClient, keys: dict[str, str], api_settings: Settings, tamper: str) -> None:
    headers = auth(keys["admin"])
    mission_id = idle_client.post("/api/v1/missions", json={"text": "Mission: tamper", "workspace": "ws"},
                                  headers=headers).json()["id"]
    for _ in range(2):  # the second read reuses the first one's verdict
        audit = idle_client.get(f"/api/v1/missions/{mission_id}", headers=headers).json()["audit"]
        assert audit["intact"] and audit["events"] == 1
    edits = {"edit an event": "UPDATE events SET actor = 'mallory' WHERE mission_id = :id",
             "delete the last event": "DELETE FROM events WHERE mission_id = :id",
             "edit the mission row": "UPDATE missions SET text = 'Mission: other' WHERE id = :id"}
    with session_scope(api_settings.resolved_database_url) as session:
        session.execute(text(edits[tamper]), {"id": mission_id})
    audit = idle_client.get(f"/api/v1/missions/{mission_id}", headers=headers).json()["audit"]
    verify = idle_client.get(f"/api/v1/missions/{mission_id}/audit/verify", headers=headers).json()
    assert not audit["intact"] and not verify["intact"]
    assert audit["reason"] == verify["reason"]
