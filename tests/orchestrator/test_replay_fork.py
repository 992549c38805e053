"""Replay and fork from the record: a finished mission re-driven from its journal reproduces its path, delegations
and outcome without asking a model or running a tool, and names the first divergent step of an altered record;
a fork from a step starts a new mission from the parent's checkpoint, runs on with another model and links to
its parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, message_to_dict
from sqlalchemy import select

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import ModelTurn
from orchestrator.replay import replay_mission
from orchestrator.runner import Runner
from tests.support.fake_chat import Scripts, ai, call
from tests.support.missions import MISSION_TEXT, full_path


def _settings(home: Path) -> Settings:
    return Settings(home=home, _env_file=None)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
    env["ORCH_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _scripted_mission(settings: Settings, workspace: Path) -> str:
    with Runner(settings, model_factory=Scripts(full_path()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed"
    return mission_id


def _alter_turn(settings: Settings, mission_id: str, scope: str, message: AIMessage) -> None:
    """Replace the last answer the lead gave in ``scope`` (e.g. ``evaluate.r1``) in the journal."""
    with session_scope(settings.resolved_database_url) as session:
        turn = session.scalars(select(ModelTurn).where(ModelTurn.mission_id == mission_id,
                                                       ModelTurn.key.like(f"ml-engineer:{scope}:%"))
                               .order_by(ModelTurn.id.desc())).first()
        assert turn is not None
        turn.message = message_to_dict(message)


def test_replay_reproduces_a_scripted_mission_without_a_model_or_a_tool(tmp_path: Path, workspace: Path) -> None:
    settings = _settings(tmp_path / "home")
    mission_id = _scripted_mission(settings, workspace)
    (workspace / "pipelines" / "score.py").unlink()  # a tool that ran again would need (or rewrite) it
    report = replay_mission(settings, mission_id)
    assert report.reproduced, report.describe()
    assert report.recorded == report.replayed == "completed" and report.compared >= 20
    assert not (workspace / "pipelines" / "score.py").exists()
    result = _cli(tmp_path / "home", "replay", mission_id)
    assert result.returncode == 0 and "replay reproduced the record" in result.stdout, result.stderr


def test_replay_names_the_first_divergent_step_of_an_altered_record(tmp_path: Path, workspace: Path) -> None:
    settings = _settings(tmp_path / "home")
    good = _scripted_mission(settings, workspace)
    altered = _scripted_mission(settings, workspace)
    # The record now says the lead concluded evaluation failed: the graph takes the review edge instead.
    _alter_turn(settings, altered, "evaluate.r1", ai("", call("finish_step", "forged-1", status="failed",
                                                              summary="evaluate", reason="recall too low")))
    report = replay_mission(settings, altered)
    assert not report.reproduced and report.step == "evaluate"
    assert "evaluate finished done" in report.detail and "evaluate finished waiting" in report.detail

    result = _cli(tmp_path / "home", "replay", "--all", "--json")
    assert result.returncode == 1, result.stderr
    reports = {r["mission_id"]: r for r in json.loads(result.stdout)}
    assert reports[good]["reproduced"] and not reports[altered]["reproduced"]
    assert reports[altered]["step"] == "evaluate"
    text = _cli(tmp_path / "home", "replay", altered)
    assert text.returncode == 1 and f"mission {altered}: replay diverged at step evaluate" in text.stdout


def test_a_call_the_record_does_not_have_runs_nothing(tmp_path: Path, workspace: Path) -> None:
    settings = _settings(tmp_path / "home")
    mission_id = _scripted_mission(settings, workspace)
    forged = ai("", call("write_file", "forged-2", path="FORGED.txt", content="should never be written"))
    _alter_turn(settings, mission_id, "design.r1", forged)
    report = replay_mission(settings, mission_id)
    assert not report.reproduced and report.step == "design"
    assert "write_file (forged-2) that the record does not have" in report.detail
    assert not list(tmp_path.rglob("FORGED.txt"))


@pytest.mark.slow
def test_replay_reproduces_the_demo_mission(tmp_path: Path) -> None:
    from tools.ml.demo import build_demo_workspace

    workspace = tmp_path / "demo"
    workspace.mkdir()
    build_demo_workspace(workspace, reference_rows=400, current_rows=500, expected_rows_per_night=100_000)
    text = resources.files("orchestrator.data").joinpath("anomaly-batch-scoring.md").read_text(encoding="utf-8")
    settings = _settings(tmp_path / "home")
    with Runner(settings) as runner:  # the built-in planner plays every agent, the ML tools run in the sandbox
        mission_id = runner.submit(text, workspace=workspace, owner="demo", auto_approve_by="demo")
        assert runner.run(mission_id) == "completed"
    report = replay_mission(settings, mission_id)
    assert report.reproduced, report.describe()
    assert report.compared >= 20
