"""On SQLite a request's short reads and writes run on the event loop (a thread hop cost more than the work,
bench/api_latency.py), but a write never waits there: when another writer holds the file, it is handed to a
worker thread, and the loop keeps answering."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from orchestrator.db import session_scope
from orchestrator.db.direct import transaction
from orchestrator.db.engine import WriteBusy, engine_for, write_now
from orchestrator.db.missions import create_mission
from tests.api.conftest import auth


def _file(url: str) -> str:
    return url.removeprefix("sqlite:///")


def test_a_create_while_another_process_writes_waits_on_a_thread_and_the_loop_answers(
        idle_client: TestClient, keys: dict[str, str], sqlite_url: str) -> None:
    other = sqlite3.connect(_file(sqlite_url), isolation_level=None)  # another process's writer, as SQLite sees it
    other.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(idle_client.post, "/api/v1/missions", headers=auth(keys["submitter"]),
                                  json={"text": "Mission: wait for the writer", "workspace": "ws"})
            time.sleep(0.3)
            started = time.monotonic()
            for _ in range(5):  # the loop is free: the create waits on a worker thread
                assert idle_client.get("/healthz").status_code == 200
                assert idle_client.get("/api/v1/missions", headers=auth(keys["submitter"])).status_code == 200
            assert time.monotonic() - started < 2.0
            assert not pending.done()
            other.execute("COMMIT")
            created = pending.result(timeout=30)
    finally:
        other.close()
    assert created.status_code == 201, created.text
    view = idle_client.get(created.headers["Location"], headers=auth(keys["submitter"])).json()
    assert view["status"] == "queued" and view["audit"]["intact"] and view["audit"]["events"] == 1


@pytest.mark.parametrize("held_by", ["this-process", "another-process"])
@pytest.mark.parametrize("how", ["direct", "session"])
def test_write_now_refuses_at_once_and_writes_nothing(sqlite_url: str, tmp_path, held_by: str, how: str) -> None:
    release, holding = threading.Event(), threading.Event()

    def hold_in_this_process() -> None:
        with transaction(sqlite_url):
            holding.set()
            release.wait(10)

    holder = other = None
    if held_by == "this-process":
        holder = threading.Thread(target=hold_in_this_process)
        holder.start()
        assert holding.wait(5)
    else:
        other = sqlite3.connect(_file(sqlite_url), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    try:
        with pytest.raises(WriteBusy), write_now():
            if how == "direct":
                with transaction(sqlite_url) as tx:
                    create_mission(tx, text="Mission: x", spec={}, workspace=str(tmp_path))
            else:
                with session_scope(sqlite_url) as session:
                    create_mission(session, text="Mission: x", spec={}, workspace=str(tmp_path))
    finally:
        release.set()
        if holder is not None:
            holder.join()
        if other is not None:
            other.execute("ROLLBACK")
            other.close()
    assert time.monotonic() - started < 1.0  # at once, not after the 30 s busy timeout
    with session_scope(sqlite_url) as session:
        assert session.execute(text("SELECT count(*) FROM missions")).scalar() == 0
    # Every pooled connection waits for its turn again outside write_now, and writes.
    with engine_for(sqlite_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    with transaction(sqlite_url) as tx:
        create_mission(tx, text="Mission: y", spec={}, workspace=str(tmp_path))
