"""Direct statements write what the ORM would, inside the caller's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.audit import append_event, verify_chain
from orchestrator.db import session_scope
from orchestrator.db.direct import Statement, transaction
from orchestrator.db.missions import claim_mission, create_mission, finish_step, start_step
from orchestrator.db.models import Event, Mission, Step, ToolCall
from orchestrator.journal import save_tool_call
from orchestrator.leases import LeaseKeeper


def _mission(url: str, workspace: Path) -> str:
    with session_scope(url) as session:
        return create_mission(session, text="Mission: direct", spec={"objective": "direct"},
                              workspace=str(workspace)).id


def _call(mission_id: str, call_id: str) -> dict:
    return {"mission_id": mission_id, "call_id": call_id, "tool": "read_file", "agent": "ml-engineer",
            "step": "align", "delegation_id": None, "args_sha256": "a" * 64, "result": "ok: é ✓",
            "result_sha256": "b" * 64, "status": "ok", "decision": "allowed",
            "signals": [{"kind": "infrastructure", "detail": "x", "data": {"n": 1.5}}], "sandboxed": None,
            "duration_ms": 1.5}


def test_rows_written_directly_read_back_through_the_models(db_url: str, workspace: Path) -> None:
    mission_id = _mission(db_url, workspace)
    before = datetime.now(UTC)
    with transaction(db_url) as tx:
        save_tool_call(tx, **_call(mission_id, "c-1"))
        appended = append_event(tx, mission_id=mission_id, kind="tool.called", actor="ml-engineer", step="align",
                                payload={"nested": {"list": [1, "two", None]}, "when": before})
    with session_scope(db_url, readonly=True) as session:
        row = session.scalar(select(ToolCall).where(ToolCall.call_id == "c-1"))
        event = session.get(Event, appended.id)
        assert row is not None and event is not None
        assert row.signals == [{"kind": "infrastructure", "detail": "x", "data": {"n": 1.5}}]
        assert row.result == "ok: é ✓" and row.sandboxed is None and row.delegation_id is None
        assert row.created_at.tzinfo is not None and row.created_at >= before.replace(microsecond=0)
        assert event.payload == {"nested": {"list": [1, "two", None]}, "when": str(before)}
        assert (event.seq, event.hash, event.ts) == (appended.seq, appended.hash, appended.ts)
        assert verify_chain(session, mission_id).intact  # the hash of a direct row verifies from the ORM's read


def test_a_direct_transaction_writes_nothing_when_it_fails(db_url: str, workspace: Path) -> None:
    mission_id = _mission(db_url, workspace)
    with pytest.raises(RuntimeError, match="boom"), transaction(db_url) as tx:
        save_tool_call(tx, **_call(mission_id, "c-2"))
        append_event(tx, mission_id=mission_id, kind="tool.called", actor="ml-engineer")
        raise RuntimeError("boom")
    with session_scope(db_url, readonly=True) as session:
        assert session.scalar(select(ToolCall).where(ToolCall.call_id == "c-2")) is None
        assert session.scalars(select(Event.kind).where(Event.mission_id == mission_id)).all() == ["mission.queued"]


def test_direct_statements_in_a_session_roll_back_with_it(db_url: str, workspace: Path) -> None:
    mission_id = _mission(db_url, workspace)
    with pytest.raises(RuntimeError), session_scope(db_url) as session:
        start_step(session, mission_id=mission_id, name="align", actor="ml-engineer")
        raise RuntimeError("the session fails after the direct statement")
    with session_scope(db_url) as session:
        align = session.scalar(select(Step).where(Step.mission_id == mission_id, Step.name == "align"))
        assert align is not None and (align.status, align.rounds) == ("pending", 0)


def test_step_transitions_finish_only_the_running_round(db_url: str, workspace: Path) -> None:
    mission_id = _mission(db_url, workspace)
    with transaction(db_url) as tx:
        assert start_step(tx, mission_id=mission_id, name="report", actor="ml-engineer") == 1  # row made on first use
        assert finish_step(tx, mission_id=mission_id, name="report", round_=1, actor="ml-engineer", summary="s")
        assert not finish_step(tx, mission_id=mission_id, name="report", round_=1, actor="ml-engineer")
    with session_scope(db_url, readonly=True) as session:
        report = session.scalar(select(Step).where(Step.mission_id == mission_id, Step.name == "report"))
        assert report is not None and (report.status, report.rounds, report.summary) == ("done", 1, "s")
        assert report.position == 6 and report.started_at <= report.finished_at
        kinds = session.scalars(select(Event.kind).where(Event.mission_id == mission_id).order_by(Event.seq)).all()
        assert kinds == ["mission.queued", "step.started", "step.finished"]


def test_a_statement_names_a_column_the_table_lacks() -> None:
    with pytest.raises(ValueError, match="missions has no column lease"):
        Statement("UPDATE missions SET lease = :lease WHERE id = :id", Mission.__table__)


def test_the_lease_keeper_renews_held_leases_only(sqlite_url: str, workspace: Path) -> None:
    mission_id = _mission(sqlite_url, workspace)
    with transaction(sqlite_url) as tx:
        assert claim_mission(tx, mission_id=mission_id, worker="w1", lease_s=0.3)
        assert not claim_mission(tx, mission_id=mission_id, worker="w2", lease_s=0.3)

    def expiry() -> datetime:
        with session_scope(sqlite_url, readonly=True) as session:
            return session.scalar(select(Mission.lease_expires_at).where(Mission.id == mission_id))

    keeper = LeaseKeeper(sqlite_url, worker="w1", lease_s=0.3)
    try:
        first = expiry()
        with keeper.hold(mission_id):
            time.sleep(0.5)
            renewed = expiry()
        assert renewed > first
        time.sleep(0.15)  # a beat that had already read the held set ends
        settled = expiry()
        time.sleep(0.4)
        assert expiry() == settled  # released: no more renewals
    finally:
        keeper.close()
    assert all(t.name != "lease-heartbeat" for t in threading.enumerate())
