"""A mission whose process is killed with SIGKILL resumes from its checkpoint; no tool runs twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.models import Mission, Step, ToolCall
from orchestrator.errors import InvalidTransition
from orchestrator.mission import parse_mission
from orchestrator.runner import Runner
from tests.support.missions import MISSION_TEXT

ROOT = Path(__file__).resolve().parents[2]


def _spawn(url: str, mission_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.support.run_scripted", url, mission_id, "slow_tool_path"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(url: str, mission_id: str) -> set[str]:
    """The call ids whose result is recorded (a call with side effects is recorded as started before it runs)."""
    with session_scope(url) as session:
        return set(session.scalars(select(ToolCall.call_id).where(ToolCall.mission_id == mission_id,
                                                                  ToolCall.status != "started")))


def _calls(url: str, mission_id: str) -> dict[str, int]:
    with session_scope(url) as session:
        rows = session.execute(select(ToolCall.call_id, func.count()).where(ToolCall.mission_id == mission_id)
                               .group_by(ToolCall.call_id)).all()
    return {row[0]: row[1] for row in rows}


@pytest.mark.slow
def test_killed_mission_resumes_without_running_a_completed_tool_twice(db_url: str, workspace: Path) -> None:
    with session_scope(db_url) as session:
        mission_id = create_mission(session, text=MISSION_TEXT, spec=parse_mission(MISSION_TEXT).model_dump(),
                                    workspace=str(workspace), auto_approve_by="test").id
    first = _spawn(db_url, mission_id)
    deadline = time.monotonic() + 180
    while "k-2" not in _finished(db_url, mission_id):  # the counted call finished; the slow one is now running
        assert time.monotonic() < deadline, first.communicate(timeout=5)
        assert first.poll() is None, first.communicate()
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    with session_scope(db_url) as session:
        assert session.get(Mission, mission_id).status == "running"  # died mid-mission

    second = _spawn(db_url, mission_id)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.strip() == "completed"
    counter = (workspace / "counter.txt").read_text().splitlines()
    # The completed call did not run again; the killed one (a shell command: its effects are not keyed by the
    # call) was reported as interrupted to the model, not run a second time.
    assert counter == ["once"]
    assert _calls(db_url, mission_id) == {"k-1": 1, "k-2": 1, "k-3": 1}
    with session_scope(db_url) as session:
        status = session.scalar(select(ToolCall.status).where(ToolCall.mission_id == mission_id,
                                                              ToolCall.call_id == "k-3"))
    assert status == "interrupted"


@pytest.mark.slow
@pytest.mark.parametrize("die_at", ["writes:design", "checkpoint:2"])
def test_a_step_whose_records_committed_but_not_its_checkpoint_resumes(db_url: str, workspace: Path,
                                                                        die_at: str) -> None:
    """The narrowest window: the design node's closing transaction committed (step done, implement opened),
    then the process died before LangGraph saved design's outcome. The resumed run either executes design
    again, which replays its journal, or applies its saved writes: either way the shell call is not run
    twice, no step gets a second round, and the mission goes on to the end."""
    with session_scope(db_url) as session:
        mission_id = create_mission(session, text=MISSION_TEXT, spec=parse_mission(MISSION_TEXT).model_dump(),
                                    workspace=str(workspace), auto_approve_by="test").id
    script = [sys.executable, "-m", "tests.support.run_scripted", db_url, mission_id, "counted_path"]
    first = subprocess.run([*script, die_at], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 137, first.stderr
    with session_scope(db_url) as session:
        steps = dict(session.execute(select(Step.name, Step.status).where(Step.mission_id == mission_id)).all())
        assert (steps["design"], steps["implement"]) == ("done", "running")  # committed before the death

    second = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "completed"
    assert (workspace / "counter.txt").read_text().splitlines() == ["once"]
    assert _calls(db_url, mission_id) == {"c-1": 1, "c-2": 1}
    with session_scope(db_url) as session:
        rounds = dict(session.execute(select(Step.name, Step.rounds).where(Step.mission_id == mission_id)).all())
    assert rounds == {"align": 1, "design": 1, "implement": 1, "evaluate": 1, "package": 1, "release": 1,
                      "report": 1}


def test_second_resume_of_a_finished_mission_is_refused(tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    from tests.support.fake_chat import Scripts
    from tests.support.missions import full_path

    settings = Settings(home=tmp_path, database_url=sqlite_url, _env_file=None)
    with Runner(settings, model_factory=Scripts(full_path()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="test")
        assert runner.run(mission_id) == "completed"
        with pytest.raises(InvalidTransition, match="already completed"):
            runner.run(mission_id)
