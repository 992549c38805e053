"""kill -9 during each side-effecting tool leaves exactly one effect.

The process is killed with SIGKILL right after the tool made its effect and before its result was recorded,
the worst moment; the resumed run either retries the call with the same idempotency key (its effects are
found, not made again) or reports it as interrupted (a shell command), never silently runs it twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.db import session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.models import Artifact, Event, Task, ToolCall
from orchestrator.mission import parse_mission
from tests.support.missions import EFFECT_CALLS, MISSION_TEXT
from tests.support.workspaces import build_workspace

ROOT = Path(__file__).resolve().parents[2]


def _run(url: str, mission_id: str, tool: str, *die_at: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.support.run_scripted", url, mission_id, f"effect:{tool}",
                           *die_at], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _killed_then_resumed(url: str, workspace: Path, tool: str) -> str:
    with session_scope(url) as session:
        mission_id = create_mission(session, text=MISSION_TEXT, spec=parse_mission(MISSION_TEXT).model_dump(),
                                    workspace=str(workspace), auto_approve_by="test").id
    first = _run(url, mission_id, tool, f"after-tool:{tool}")
    assert first.returncode == -9, first.stderr[-2000:]  # killed by its own SIGKILL, right after the effect
    with session_scope(url) as session:
        call = session.scalar(select(ToolCall).where(ToolCall.mission_id == mission_id, ToolCall.call_id == "e-1"))
        assert call is not None and call.status == "started"  # recorded before it ran, result never recorded
    second = _run(url, mission_id, tool)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.strip() == "completed"
    return mission_id


def _events(url: str, mission_id: str, kind: str) -> list[dict]:
    with session_scope(url) as session:
        return [e.payload for e in session.scalars(select(Event).where(Event.mission_id == mission_id,
                                                                       Event.kind == kind).order_by(Event.seq))]


def _call(url: str, mission_id: str) -> ToolCall:
    with session_scope(url) as session:
        row = session.scalar(select(ToolCall).where(ToolCall.mission_id == mission_id, ToolCall.call_id == "e-1"))
        session.expunge(row)
        return row


@pytest.mark.slow
def test_task_create_retried_after_a_kill_creates_one_task(sqlite_url: str, workspace: Path) -> None:
    mission_id = _killed_then_resumed(sqlite_url, workspace, "task_create")
    with session_scope(sqlite_url) as session:
        tasks = session.scalars(select(Task).where(Task.mission_id == mission_id)).all()
        assert [(t.title, t.call_id) for t in tasks] == [("Pin the reference data", "e-1")]
    assert len(_events(sqlite_url, mission_id, "task.created")) == 1
    call = _call(sqlite_url, mission_id)
    assert (call.status, call.attempts) == ("ok", 2)  # retried with the same key, found its task
    assert json.loads(call.result)["id"] == tasks[0].id


@pytest.mark.slow
def test_task_update_retried_after_a_kill_is_applied_once(sqlite_url: str, workspace: Path) -> None:
    mission_id = _killed_then_resumed(sqlite_url, workspace, "task_update")
    updates = _events(sqlite_url, mission_id, "task.updated")
    assert [(u["status"], u["notes"]) for u in updates] == [("done", "pinned")]
    assert _call(sqlite_url, mission_id).attempts == 2


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["write_file", "edit_file"])
def test_a_file_write_retried_after_a_kill_is_made_and_recorded_once(sqlite_url: str, workspace: Path,
                                                                      tool: str) -> None:
    mission_id = _killed_then_resumed(sqlite_url, workspace, tool)
    path = EFFECT_CALLS[tool][-1]["args"]["path"]
    expected = "# Plan\n" if tool == "write_file" else "threshold = 0.7\n"
    assert (workspace / path).read_text() == expected
    writes = [e for e in _events(sqlite_url, mission_id, "artifact.written") if e["path"] == path]
    assert len(writes) == (1 if tool == "write_file" else 2)  # edit_file: the file's creation, then the edit once
    with session_scope(sqlite_url) as session:
        artifact = session.scalar(select(Artifact).where(Artifact.mission_id == mission_id, Artifact.path == path))
        assert (artifact.call_id, artifact.sha256) == ("e-1", writes[-1]["sha256"])
    call = _call(sqlite_url, mission_id)
    assert (call.status, call.attempts) == ("ok", 2)


@pytest.mark.slow
def test_a_shell_command_killed_after_its_effect_is_reported_not_run_again(sqlite_url: str, workspace: Path) -> None:
    mission_id = _killed_then_resumed(sqlite_url, workspace, "bash")
    assert (workspace / "effects.log").read_text() == "ran\n"  # once: the command's effect is not repeated
    call = _call(sqlite_url, mission_id)
    assert call.status == "interrupted" and "[interrupted]" in call.result and call.attempts == 1
    recorded = [e for e in _events(sqlite_url, mission_id, "tool.called") if e["call_id"] == "e-1"]
    assert [e["status"] for e in recorded] == ["interrupted"]


@pytest.mark.slow
def test_an_evaluation_retried_after_a_kill_adds_its_history_rows_once(sqlite_url: str, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    build_workspace(workspace, kind="binary", rows=400)
    mission_id = _killed_then_resumed(sqlite_url, workspace, "evaluate_model")
    history = (workspace / "monitoring/history.jsonl").read_text().splitlines()
    assert len(history) == 1 and json.loads(history[0])["batch"] == "current"
    call = _call(sqlite_url, mission_id)
    assert (call.attempts, call.tool) == (2, "evaluate_model")
    # The reports are written again (they carry the time of the evaluation): one version of each is on record.
    with session_scope(sqlite_url) as session:
        records = session.execute(select(Artifact.path, Artifact.call_id).where(Artifact.mission_id == mission_id)
                                  ).all()
    assert ("reports/evaluation.json", "e-1") in records and ("monitoring/history.jsonl", "e-1") in records


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_builtin_planner_runs_an_interrupted_shell_command_again_as_a_new_call(sqlite_url: str,
                                                                                  tmp_path: Path) -> None:
    """The dry run the implement step runs is killed right after it ran: on resume the call is reported as
    interrupted, and the planner makes the same move again as a new call, on the record, and goes on."""
    workspace = tmp_path / "ws"
    build_workspace(workspace, kind="binary", rows=400)
    with session_scope(sqlite_url) as session:
        mission_id = create_mission(session, text=MISSION_TEXT, spec=parse_mission(MISSION_TEXT).model_dump(),
                                    workspace=str(workspace), auto_approve_by="test").id
    script = [sys.executable, "-m", "tests.support.run_scripted", sqlite_url, mission_id, "builtin"]
    first = subprocess.run([*script, "after-tool:bash"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == -9, first.stderr[-2000:]
    second = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.strip() in ("completed", "completed_with_risks")
    with session_scope(sqlite_url) as session:
        shell = session.execute(select(ToolCall.call_id, ToolCall.status, ToolCall.attempts).where(
            ToolCall.mission_id == mission_id, ToolCall.tool == "bash").order_by(ToolCall.id)).all()
    interrupted, rerun = shell[0], shell[1]
    assert (interrupted.status, interrupted.attempts) == ("interrupted", 1)
    assert rerun.status == "ok" and rerun.call_id != interrupted.call_id
    messages = [e["text"] for e in _events(sqlite_url, mission_id, "message")]
    assert any("Running again, as a new call, what a worker crash interrupted: bash" in m for m in messages)
