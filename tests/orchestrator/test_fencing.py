"""Fencing: each claim of a mission makes a new lease epoch; a runner that lost its lease writes nothing more."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from sqlalchemy import func, select, update

from orchestrator.audit import append_event, verify_chain
from orchestrator.db import session_scope
from orchestrator.db.direct import Fence, LeaseLost, fenced, transaction
from orchestrator.db.missions import claim_mission, create_mission
from orchestrator.db.models import Event, Mission, ToolCall, utcnow
from orchestrator.leases import LeaseKeeper
from orchestrator.mission import parse_mission
from tests.support.fake_chat import ai, call
from tests.support.missions import MISSION_TEXT

ROOT = Path(__file__).resolve().parents[2]


def _mission(url: str, workspace: Path) -> str:
    with session_scope(url) as session:
        return create_mission(session, text=MISSION_TEXT, spec=parse_mission(MISSION_TEXT).model_dump(),
                              workspace=str(workspace), auto_approve_by="test").id


def _expire(url: str, mission_id: str) -> None:
    with session_scope(url) as session:
        session.execute(update(Mission).where(Mission.id == mission_id)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def _stale_and_live(url: str, mission_id: str) -> tuple[int, int]:
    """w1 claims the mission, its lease runs out, w2 claims it: (w1's stale epoch, w2's live one)."""
    with transaction(url) as tx:
        stale = claim_mission(tx, mission_id=mission_id, worker="w1", lease_s=60)
    _expire(url, mission_id)
    with transaction(url) as tx:
        live = claim_mission(tx, mission_id=mission_id, worker="w2", lease_s=60)
    return stale, live


def _events(url: str, mission_id: str) -> int:
    with session_scope(url, readonly=True) as session:
        return session.scalar(select(func.count(Event.id)).where(Event.mission_id == mission_id))


def test_each_claim_makes_a_new_epoch(db_url: str, workspace: Path) -> None:
    mission_id = _mission(db_url, workspace)
    with transaction(db_url) as tx:
        first = claim_mission(tx, mission_id=mission_id, worker="w1", lease_s=60)
        assert claim_mission(tx, mission_id=mission_id, worker="w2", lease_s=60) is None  # held by w1
        again = claim_mission(tx, mission_id=mission_id, worker="w1", lease_s=60)
    _expire(db_url, mission_id)
    with transaction(db_url) as tx:
        taken = claim_mission(tx, mission_id=mission_id, worker="w2", lease_s=60)
    assert first is not None and again == first + 1 and taken == first + 2


@pytest.mark.parametrize("writer", ["direct", "session"])
def test_a_stale_claims_writes_are_refused_and_write_nothing(db_url: str, workspace: Path, writer: str) -> None:
    mission_id = _mission(db_url, workspace)
    stale, live = _stale_and_live(db_url, mission_id)
    before = _events(db_url, mission_id)

    fence = Fence(mission_id=mission_id, worker="w1", epoch=stale)
    with fenced(fence), pytest.raises(LeaseLost, match=f"held by w2 at epoch {live}"):
        scope = transaction(db_url) if writer == "direct" else session_scope(db_url)
        with scope as tx:
            append_event(tx, mission_id=mission_id, kind="message", actor="stale", payload={"text": "late"})
    assert fence.lost.is_set() and _events(db_url, mission_id) == before
    with fenced(fence), pytest.raises(LeaseLost, match="is lost"), transaction(db_url):
        pass  # known lost: not even a read this time
    with fenced(fence), session_scope(db_url, readonly=True) as session:  # reading is never fenced
        assert session.scalar(select(Mission.lease_owner).where(Mission.id == mission_id)) == "w2"

    with fenced(Fence(mission_id=mission_id, worker="w2", epoch=live)), transaction(db_url) as tx:
        append_event(tx, mission_id=mission_id, kind="message", actor="live", payload={"text": "mine"})
    assert _events(db_url, mission_id) == before + 1


def test_a_stale_claims_checkpoint_writes_are_refused_and_write_nothing(db_url: str, workspace: Path) -> None:
    """LangGraph's checkpoints are writes of the run too: the stale runner's is refused, the live one's is not."""
    from langgraph.checkpoint.base import empty_checkpoint

    from orchestrator.checkpoint import open_checkpointer

    mission_id = _mission(db_url, workspace)
    stale, live = _stale_and_live(db_url, mission_id)
    config = {"configurable": {"thread_id": mission_id, "checkpoint_ns": ""}}
    with open_checkpointer(db_url) as opened:
        saver = opened.saver
        with fenced(Fence(mission_id=mission_id, worker="w1", epoch=stale)), pytest.raises(LeaseLost):
            saver.put(config, empty_checkpoint(), {"step": 1}, {})
        assert saver.get_tuple(config) is None  # nothing written
        with fenced(Fence(mission_id=mission_id, worker="w2", epoch=live)):
            saved = saver.put(config, empty_checkpoint(), {"step": 1}, {})
        assert saver.get_tuple(saved) is not None


def test_the_same_worker_reclaiming_ends_its_older_claim(sqlite_url: str, workspace: Path) -> None:
    mission_id = _mission(sqlite_url, workspace)
    with transaction(sqlite_url) as tx:
        older = claim_mission(tx, mission_id=mission_id, worker="w1", lease_s=60)
        claim_mission(tx, mission_id=mission_id, worker="w1", lease_s=60)
    with fenced(Fence(mission_id=mission_id, worker="w1", epoch=older)), pytest.raises(LeaseLost), \
            transaction(sqlite_url):
        pass


def test_a_renewal_that_finds_the_lease_taken_marks_the_fence_lost(sqlite_url: str, workspace: Path) -> None:
    mission_id = _mission(sqlite_url, workspace)
    with transaction(sqlite_url) as tx:
        epoch = claim_mission(tx, mission_id=mission_id, worker="w1", lease_s=0.3)
    keeper = LeaseKeeper(sqlite_url, worker="w1", lease_s=0.3)
    try:
        with keeper.hold(mission_id, epoch=epoch) as fence:
            time.sleep(0.25)
            assert not fence.lost.is_set()  # renewed, still ours
            _expire(sqlite_url, mission_id)
            with transaction(sqlite_url) as tx:
                assert claim_mission(tx, mission_id=mission_id, worker="w2", lease_s=60) == epoch + 1
            deadline = time.monotonic() + 2
            while not fence.lost.is_set():
                assert time.monotonic() < deadline, "the heartbeat never noticed"
                time.sleep(0.02)
            with pytest.raises(LeaseLost):
                fence.ensure_held()
    finally:
        keeper.close()
    with session_scope(sqlite_url) as session:  # the failed renewal did not take the lease back
        assert session.scalar(select(Mission.lease_owner).where(Mission.id == mission_id)) == "w2"


def takeover_path() -> dict[str, list[AIMessage]]:
    """Design runs a slow shell call (the first worker is paused during it), implement a slower one."""
    return {"ml-engineer": [
        ai("", call("bash", "f-1", command="echo align >> trace.txt")), ai("Aligned."),
        ai("", call("bash", "f-2", command="sleep 3; echo design >> trace.txt")), ai("Designed."),
        ai("", call("write_file", "f-3", path="impl.txt", content="implemented")),
        ai("", call("bash", "f-4", command="sleep 8; echo implement >> trace.txt")), ai("Implemented."),
        ai("Evaluated."), ai("Packaged."), ai("Released."), ai("Reported."),
    ]}


_WORKER = """
import sys
from orchestrator.config import Settings
from orchestrator.runner import Runner
from tests.orchestrator.test_fencing import takeover_path
from tests.support.mission_scripts import PerMissionScripts

url, mission_id = sys.argv[1:3]
settings = Settings(database_url=url, lease_seconds=8, allow_unsandboxed_shell=True, _env_file=None)
with Runner(settings, model_factory=PerMissionScripts(takeover_path).factory) as runner:
    print(runner.run(mission_id), flush=True)
"""


def _worker(url: str, mission_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _WORKER, url, mission_id], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _calls(url: str, mission_id: str) -> dict[str, int]:
    with session_scope(url, readonly=True) as session:
        rows = session.execute(select(ToolCall.call_id, func.count()).where(ToolCall.mission_id == mission_id)
                               .group_by(ToolCall.call_id)).all()
    return {call_id: count for call_id, count in rows}


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_paused_past_its_lease_writes_nothing_after_another_took_over(pg_url: str,
                                                                                workspace: Path) -> None:
    mission_id = _mission(pg_url, workspace)
    first = _worker(pg_url, mission_id)
    try:
        deadline = time.monotonic() + 60
        while "f-1" not in _calls(pg_url, mission_id):  # align is done: design's slow call has started
            assert first.poll() is None and time.monotonic() < deadline, first.communicate(timeout=5)
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(first.pid, signal.SIGSTOP)  # paused past its 8 s lease, as a stalled VM or a long GC would be
        time.sleep(9)
        second = _worker(pg_url, mission_id)  # takes the expired lease over and runs design again
        deadline = time.monotonic() + 60
        while "f-3" not in _calls(pg_url, mission_id):  # the second worker is in implement's slow call
            assert second.poll() is None and time.monotonic() < deadline, second.communicate(timeout=5)
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGCONT)  # the first wakes while the second runs the mission
        _, first_err = first.communicate(timeout=60)
        second_out, second_err = second.communicate(timeout=120)
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
    assert first.returncode != 0 and "LeaseLost" in first_err and "stops without writing" in first_err
    assert second.returncode == 0 and second_out.strip() == "completed", second_err
    assert _calls(pg_url, mission_id) == {"f-1": 1, "f-2": 1, "f-3": 1, "f-4": 1}
    with session_scope(pg_url, readonly=True) as session:
        statuses = session.scalars(select(Event.payload).where(Event.mission_id == mission_id,
                                                               Event.kind == "mission.status")).all()
        assert [p["status"] for p in statuses] == ["running", "completed"]  # completed once, never failed
        assert session.scalar(select(Mission.lease_epoch).where(Mission.id == mission_id)) == 2
        assert verify_chain(session, mission_id).intact
