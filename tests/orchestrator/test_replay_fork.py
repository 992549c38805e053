"""Replay and fork from the record: a finished mission re-driven from its journal reproduces its path, delegations
and outcome without asking a model or running a tool, and names the first divergent step of an altered record;
a fork from a step starts a new mission from the parent's checkpoint, runs on with another model and links to
its parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_a_fork_from_evaluate_with_another_model_completes_and_links_to_its_parent(
        tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.audit import verify_chain
    from orchestrator.audit_review import print_review
    from orchestrator.fork import fork_mission
    from orchestrator.views import mission_view

    settings = _settings(tmp_path / "home")
    parent = _scripted_mission(settings, workspace)
    with session_scope(settings.resolved_database_url) as session:
        before = mission_view(session, parent, with_audit=False)
    other = {"ml-engineer": [ai("Evaluated again with model B: precision 0.93.", tokens=(50, 10)),
                             ai("Packaged."), ai("Release planned."), ai("Report written.")]}
    with Runner(settings, model_factory=Scripts(other).factory) as runner:
        forked = fork_mission(runner, parent, from_step="evaluate", model="scripted:model-b", owner="analyst",
                              auto_approve_by="ops")
        assert forked.inherited == ("align", "design", "implement")
        assert runner.run(forked.mission_id) == "completed"
        messages = runner.graph.get_state({"configurable": {"thread_id": forked.mission_id}}).values["messages"]
    child = forked.mission_id
    with session_scope(settings.resolved_database_url) as session:
        view = mission_view(session, child)
        parent_after = mission_view(session, parent, with_audit=False)
        assert verify_chain(session, child).intact
    assert view["parent_id"] == parent and view["model"] == "scripted:model-b" and view["status"] == "completed"
    steps = {s["name"]: s for s in view["steps"]}
    # The steps before the fork are the parent's, as it left them; evaluate onwards are the fork's own.
    for name in ("align", "design", "implement"):
        assert steps[name]["status"] == "done" and steps[name]["summary"] == next(
            s["summary"] for s in before["steps"] if s["name"] == name)
    assert steps["evaluate"]["summary"] == "Evaluated again with model B: precision 0.93."
    assert steps["evaluate"]["rounds"] == 1 and steps["report"]["status"] == "done"
    # The parent's delegations before evaluate come along; the fork made none of its own.
    assert [(d["step"], d["to_agent"]) for d in view["delegations"]] == [("align", "data-scientist"),
                                                                         ("design", "backend-developer")]
    # The lead went on from the parent's conversation.
    texts = [m.content for m in messages if isinstance(m.content, str)]
    assert "Implemented pipelines/score.py." in texts and "Evaluated." not in texts
    assert "Evaluated again with model B: precision 0.93." in texts
    assert parent_after["status"] == "completed" and parent_after["steps"] == before["steps"]
    assert parent_after["parent_id"] is None
    print_review(settings.resolved_database_url, child)
    assert f"forked from mission {parent} at step evaluate" in capsys.readouterr().out
    # A fork replays from where it started: its parent's checkpoint and the steps it took over.
    report = replay_mission(settings, child)
    assert report.reproduced, report.describe()
    assert report.compared >= 8  # evaluate, package, release and report, started and finished, and the outcome
    result = _cli(tmp_path / "home", "missions", "show", child, "--json")
    assert json.loads(result.stdout)["parent_id"] == parent


def test_fork_refuses_a_step_the_parent_never_reached(tmp_path: Path, workspace: Path) -> None:
    settings = _settings(tmp_path / "home")
    lead = [ai("aligned"), ai("", call("finish_step", "f-1", status="blocked", summary="design",
                                       reason="no interface owner"))]
    with Runner(settings, model_factory=Scripts({"ml-engineer": lead}).factory) as runner:
        parent = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(parent) == "waiting_approval"
    result = _cli(tmp_path / "home", "fork", parent, "--from", "evaluate")
    assert result.returncode == 2 and "never reached step 'evaluate'" in result.stderr, result.stderr
    assert "align, design" in result.stderr and "Traceback" not in result.stderr
    result = _cli(tmp_path / "home", "fork", parent, "--from", "nowhere")
    assert result.returncode == 2 and "'nowhere' is not a step" in result.stderr
