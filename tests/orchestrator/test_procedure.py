"""The procedure declared once: the drawn graph has exactly its edges, step outcomes are the lead's, failures
go to a human, every recorded event fits the catalogue, and every tool failure is recorded as an error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import Event, ToolCall
from orchestrator.events import EventKind, validate_payload
from orchestrator.langgraph_app import graph as drawn_graph
from orchestrator.procedure import PROCEDURE, STEPS
from orchestrator.runner import Runner
from orchestrator.views import mission_view
from tests.support.fake_chat import Scripts, ai, call, handoff
from tests.support.missions import MISSION_TEXT, full_path


def _settings(tmp_path: Path, url: str, **overrides: object) -> Settings:
    return Settings(home=tmp_path / "home", database_url=url, _env_file=None, **overrides)


def _view(url: str, mission_id: str) -> dict:
    with session_scope(url) as session:
        return mission_view(session, mission_id)


def finish(status: str, summary: str, reason: str = "") -> object:
    return ai(summary, call("finish_step", f"fin-{summary}", status=status, summary=summary, reason=reason))


def test_the_drawn_graph_has_exactly_the_declared_edges() -> None:
    drawn = {(e.source, e.target) for e in drawn_graph.get_graph().edges}
    declared = {(node, target) for node in PROCEDURE.nodes for target in PROCEDURE.destinations(node)}
    assert drawn == declared | {("__start__", PROCEDURE.steps[0].name)}
    assert len(drawn) < 100  # every node to every other would be 14 x 14
    # Sub-agents return only to the steps that may delegate to them (and the failure edges that use them).
    assert {t for s, t in drawn if s == "security-expert"} == {"align", "package", "release"}


def test_a_failed_step_waits_for_a_human_then_changes_requested_runs_it_again(tmp_path: Path, sqlite_url: str,
                                                                               workspace: Path) -> None:
    lead = [ai("aligned"), finish("failed", "design", "the interface review found no owner for the output table"),
            ai("design again, with an owner"), *[ai(f"done {s}") for s in STEPS[2:]]]
    scripts = Scripts({"ml-engineer": lead})
    with Runner(_settings(tmp_path, sqlite_url), model_factory=scripts.factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "waiting_approval"
        view = _view(sqlite_url, mission_id)
        steps = {s["name"]: s for s in view["steps"]}
        assert steps["design"]["status"] == "waiting" and "no owner" in steps["design"]["reason"]
        assert all(steps[s]["status"] == "pending" for s in STEPS[2:])
        [gate] = [a for a in view["approvals"] if a["status"] == "pending"]
        assert gate["kind"] == "failed" and gate["step"] == "design"
        runner.decide(mission_id, decision="changes_requested", actor="reviewer", comment="name the table owner")
        assert runner.run(mission_id) == "waiting_approval"  # now at the release gate
        runner.decide(mission_id, decision="approved", actor="reviewer")
        assert runner.run(mission_id) == "completed"
        messages = runner.graph.get_state({"configurable": {"thread_id": mission_id}}).values["messages"]
    view = _view(sqlite_url, mission_id)
    design = next(s for s in view["steps"] if s["name"] == "design")
    assert design["status"] == "done" and design["rounds"] == 2
    # The reviewer's comment reached the lead as an instruction opening the step's second round.
    [reopened] = [m for m in messages if isinstance(m.content, str) and "design (round 2)" in m.content]
    assert "name the table owner" in reopened.content
    with session_scope(sqlite_url) as session:
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.mission_id == mission_id))]
    assert EventKind.STEP_SETTLED in kinds and kinds.count(EventKind.USER_MESSAGE) == 1


def test_a_rejected_review_ends_the_mission_with_the_steps_status_and_reason(tmp_path: Path, sqlite_url: str,
                                                                             workspace: Path) -> None:
    lead = [ai("aligned"), ai("designed"), finish("blocked", "implement", "no pipeline config in the workspace")]
    with Runner(_settings(tmp_path, sqlite_url), model_factory=Scripts({"ml-engineer": lead}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "waiting_approval"
        runner.decide(mission_id, decision="rejected", actor="owner")
        assert runner.run(mission_id) == "blocked"
    view = _view(sqlite_url, mission_id)
    assert "no pipeline config" in view["reason"] and "rejected at review by owner" in view["reason"]
    statuses = [s["status"] for s in view["steps"]]
    assert statuses == ["done", "done", "blocked", "pending", "pending", "pending", "pending"]


def test_an_accepted_risk_ends_completed_with_risks(tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    lead = [ai("aligned"), ai("designed"), ai("implemented"),
            finish("failed", "evaluate", "recall 0.61 below the 0.70 floor"), *[ai(f"done {s}") for s in STEPS[4:]]]
    settings = _settings(tmp_path, sqlite_url)
    with Runner(settings, model_factory=Scripts({"ml-engineer": lead}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed_with_risks"
    view = _view(sqlite_url, mission_id)
    assert "recall 0.61" in view["reason"] and "accepted by ops" in view["reason"]
    assert next(s for s in view["steps"] if s["name"] == "evaluate")["status"] == "failed"


def test_every_recorded_event_fits_the_catalogue(tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    with Runner(_settings(tmp_path, sqlite_url), model_factory=Scripts(full_path()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed"
    with session_scope(sqlite_url) as session:
        events = list(session.scalars(select(Event).where(Event.mission_id == mission_id)))
    assert {e.kind for e in events} >= {EventKind.STEP_FINISHED, EventKind.STEP_SETTLED, EventKind.HANDOFF_STARTED}
    for event in events:
        validate_payload(event.kind, event.payload)


def test_a_handoff_outside_the_steps_targets_is_refused(tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    lead = [handoff("backend-developer", "bd-1", "build an endpoint"), ai("aligned without it"),
            *[ai(f"done {s}") for s in STEPS[1:]]]
    with Runner(_settings(tmp_path, sqlite_url), model_factory=Scripts({"ml-engineer": lead}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed"
    assert _view(sqlite_url, mission_id)["delegations"] == []


def test_an_unexpected_tool_exception_is_a_recorded_error_without_a_traceback(
        tmp_path: Path, sqlite_url: str, workspace: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # The tool is the boundary here: a registered tool replaced by one that raises, as a buggy tool would.
    import tools.files as files_module

    def explode(*_: object, **__: object) -> str:
        raise KeyError("columns")

    monkeypatch.setattr(files_module.read_file, "func", explode)
    lead = [ai("", call("read_file", "rf-1", path="README.md")), *[ai(f"done {s}") for s in STEPS]]
    with Runner(_settings(tmp_path, sqlite_url), model_factory=Scripts({"ml-engineer": lead}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        with caplog.at_level(logging.WARNING):
            assert runner.run(mission_id) == "completed"
    with session_scope(sqlite_url) as session:
        row = session.scalar(select(ToolCall).where(ToolCall.call_id == "rf-1"))
        event = session.scalar(select(Event).where(Event.mission_id == mission_id, Event.kind == "tool.called"))
    assert row.status == "error" and "failed unexpectedly (KeyError" in row.result
    assert event.payload["status"] == "error"
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err + caplog.text
