"""The CLI on bad input: one clear line, an exit code, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.missions import MISSION_TEXT


def _cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
    full_env.update({"ORCH_HOME": str(home), **(env or {})})
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def _assert_clean_error(result: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def _missions(home: Path) -> list[dict]:
    result = _cli(home, "missions", "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_empty_mission(tmp_path: Path, workspace: Path) -> None:
    _assert_clean_error(_cli(tmp_path, "run", "--workspace", str(workspace), "   "), 2, "the mission is empty")
    assert _missions(tmp_path) == []


def test_missing_workspace(tmp_path: Path) -> None:
    result = _cli(tmp_path, "run", "--workspace", str(tmp_path / "nowhere"), MISSION_TEXT)
    _assert_clean_error(result, 2, "does not exist")
    assert _missions(tmp_path) == []


def test_missing_mission_file(tmp_path: Path, workspace: Path) -> None:
    result = _cli(tmp_path, "run", "--workspace", str(workspace), "--mission-file", str(tmp_path / "m.md"))
    _assert_clean_error(result, 2, "cannot read mission file")


@pytest.mark.parametrize("args", [["missions", "show", "deadbeef"], ["audit", "verify", "deadbeef"],
                                  ["resume", "deadbeef"], ["approve", "deadbeef"], ["cancel", "deadbeef"]],
                         ids=["show", "verify", "resume", "approve", "cancel"])
def test_unknown_mission_id(tmp_path: Path, args: list[str]) -> None:
    _assert_clean_error(_cli(tmp_path, *args), 3, "no mission with id 'deadbeef'")


@pytest.mark.parametrize(("text", "needle"), [
    ("---\nname: helper\ndescription: d\ntools: [Read, Teleport]\n---\nbody", "unknown tool 'Teleport'"),
    ("---\nname: Bad Name\ndescription: d\n---\nbody", "field 'name'"),
], ids=["unknown-tool", "malformed"])
def test_broken_agent_file_stops_start_up(tmp_path: Path, workspace: Path, text: str, needle: str) -> None:
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir()
    (agents_dir / "helper.md").write_text(text)
    result = _cli(tmp_path, "run", "--workspace", str(workspace), MISSION_TEXT,
                  env={"ORCH_AGENTS_DIRS": json.dumps([str(agents_dir)])})
    _assert_clean_error(result, 2, needle)
    assert str(agents_dir / "helper.md") in result.stderr
    assert _missions(tmp_path) == []


def test_bad_database_url(tmp_path: Path) -> None:
    result = _cli(tmp_path, "missions", "list", env={"ORCH_DATABASE_URL": "mysql://nope"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not supported" in result.stderr
