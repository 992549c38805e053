"""The real compiled graph driven by scripted chat models: steps, handoffs, gates, guards, records."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.audit import verify_chain
from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import Event, ToolCall
from orchestrator.runner import Runner
from orchestrator.views import mission_view
from tests.support.fake_chat import Scripts, ai, call, handoff, submit
from tests.support.missions import MISSION_TEXT, full_path

SUBS = {"data-scientist", "devops-engineer", "security-expert", "backend-developer"}


def _settings(tmp_path: Path, url: str, **overrides: object) -> Settings:
    return Settings(home=tmp_path / "home", database_url=url, _env_file=None, **overrides)


def _view(url: str, mission_id: str) -> dict:
    with session_scope(url) as session:
        return mission_view(session, mission_id)


def _events(url: str, mission_id: str) -> list[Event]:
    with session_scope(url) as session:
        return list(session.scalars(select(Event).where(Event.mission_id == mission_id).order_by(Event.seq)))


def test_full_path_with_every_handoff_and_an_approved_release(tmp_path: Path, db_url: str, workspace: Path) -> None:
    scripts = Scripts(full_path())
    with Runner(_settings(tmp_path, db_url), model_factory=scripts.factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "waiting_approval"
        view = _view(db_url, mission_id)
        [gate] = view["approvals"]
        assert (gate["kind"], gate["status"]) == ("release", "pending")
        runner.decide(mission_id, decision="approved", actor="alice", comment="ship it",
                      quoted_sha256=gate["payload_sha256"])
        assert runner.run(mission_id) == "completed"

    view = _view(db_url, mission_id)
    assert [(s["name"], s["status"]) for s in view["steps"]] == [
        ("align", "done"), ("design", "done"), ("implement", "done"), ("evaluate", "done"), ("package", "done"),
        ("release", "done"), ("report", "done")]
    edges = [(d["from_agent"], d["to_agent"], d["step"], d["status"]) for d in view["delegations"]]
    assert edges == [("ml-engineer", "data-scientist", "align", "completed"),
                     ("ml-engineer", "backend-developer", "design", "completed"),
                     ("ml-engineer", "security-expert", "package", "completed"),
                     ("ml-engineer", "devops-engineer", "release", "completed")]
    ds = view["delegations"][0]
    assert ds["brief"]["task"] == "Pin dataset versions and propose thresholds"
    assert ds["result"]["summary"] == "Reference data pinned; precision floor 0.9."
    assert ds["duration_ms"] is not None and len(ds["from_sha256"]) == 64 and len(ds["to_sha256"]) == 64
    assert view["delegations"][2]["result"]["findings"][0]["severity"] == "medium"
    [approval] = view["approvals"]
    assert (approval["status"], approval["decided_by"], approval["comment"]) == ("approved", "alice", "ship it")
    [artifact] = view["artifacts"]
    assert (artifact["path"], artifact["agent"], artifact["step"]) == ("pipelines/score.py", "ml-engineer", "implement")
    assert (workspace / "pipelines/score.py").read_text() == "print('scored')\n"
    assert view["audit"]["intact"]
    kinds = [e.kind for e in _events(db_url, mission_id)]
    assert kinds.count("handoff.started") == kinds.count("handoff.finished") == 4
    assert kinds.count("approval.requested") == kinds.count("approval.decided") == 1
    assert kinds[-1] == "mission.status"


def test_rejected_release_ends_the_mission_without_a_report(tmp_path: Path, db_url: str, workspace: Path) -> None:
    scripts = Scripts(full_path())
    with Runner(_settings(tmp_path, db_url), model_factory=scripts.factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "waiting_approval"
        runner.decide(mission_id, decision="rejected", actor="bob", comment="not this week")
        assert runner.run(mission_id) == "rejected"
    view = _view(db_url, mission_id)
    assert view["approvals"][0]["status"] == "rejected"
    assert "rejected by bob" in view["error"]
    assert "report" not in {s["name"] for s in view["steps"] if s["status"] == "done"}


def test_production_path_needs_approval_and_rejection_leaves_it_untouched(tmp_path: Path, sqlite_url: str,
                                                                          workspace: Path) -> None:
    (workspace / "prod").mkdir()
    (workspace / "prod" / "scores.csv").write_text("id,score\n1,0.5\n")
    lead = [ai("", call("write_file", "p-1", path="prod/scores.csv", content="overwritten")),
            ai("Could not write production scores."),
            ai("Manual deployment plan written."),  # the access-denied detour
            *[ai(f"{step} done.") for step in ("design", "implement", "evaluate", "package", "release", "report")]]
    with Runner(_settings(tmp_path, sqlite_url), model_factory=Scripts({"ml-engineer": lead}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "waiting_approval"
        [gate] = _view(sqlite_url, mission_id)["approvals"]
        assert gate["kind"] == "production_data" and gate["payload"]["targets"] == ["prod/scores.csv"]
        runner.decide(mission_id, decision="rejected", actor="carol", comment="no prod writes")
        assert runner.run(mission_id) == "waiting_approval"  # now at the release gate
        runner.decide(mission_id, decision="approved", actor="carol")
        assert runner.run(mission_id) == "completed"
    assert (workspace / "prod" / "scores.csv").read_text() == "id,score\n1,0.5\n"
    with session_scope(sqlite_url) as session:
        row = session.scalar(select(ToolCall).where(ToolCall.mission_id == mission_id, ToolCall.call_id == "p-1"))
        assert row is not None and row.decision == "denied"
        assert "rejected by carol (no prod writes)" in row.result
    steps = {s["name"]: s["status"] for s in _view(sqlite_url, mission_id)["steps"]}
    assert steps["manual_plan"] == "done"


def test_ping_pong_on_one_edge_stops_with_a_recorded_reason(tmp_path: Path, sqlite_url: str,
                                                            workspace: Path) -> None:
    lead = [handoff("data-scientist", f"pp-{i}", "again") for i in range(10)]
    ds = [submit(f"pps-{i}", "same answer") for i in range(10)]
    settings = _settings(tmp_path, sqlite_url, max_edge_repeats=3)
    with Runner(settings, model_factory=Scripts({"ml-engineer": lead, "data-scientist": ds}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "failed"
    view = _view(sqlite_url, mission_id)
    assert "ping-pong detected: ml-engineer -> data-scientist in step align taken 3 times" in view["error"]
    assert len(view["delegations"]) == 3


def test_handoff_limit_and_turn_limit_trip_with_reasons(tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    lead = [handoff(sub, f"hl-{i}-{sub}", "work") for i in range(3) for sub in sorted(SUBS)]
    subs = {sub: [submit(f"hs-{i}-{sub}", "ok") for i in range(3)] for sub in SUBS}
    settings = _settings(tmp_path, sqlite_url, max_handoffs=5)
    with Runner(settings, model_factory=Scripts({"ml-engineer": lead, **subs}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "failed"
    assert "handoff limit reached: 5 handoffs" in _view(sqlite_url, mission_id)["error"]

    looping = [ai("", call("list_files", f"loop-{i}", path=".")) for i in range(10)]
    settings = _settings(tmp_path, sqlite_url, max_agent_turns=4)
    with Runner(settings, model_factory=Scripts({"ml-engineer": looping}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "failed"
    assert "more than 4 model turns" in _view(sqlite_url, mission_id)["error"]


def test_tool_not_granted_to_an_agent_is_refused_and_recorded(tmp_path: Path, sqlite_url: str,
                                                              workspace: Path) -> None:
    # The Security Expert is read-only: it has no Write tool.
    lead = [handoff("security-expert", "g-1", "review"), ai("aligned"), ai("manual plan"),
            *[ai(f"{s} done") for s in ("design", "implement", "evaluate", "package", "release", "report")]]
    sec = [ai("", call("write_file", "g-2", path="x.txt", content="x")), submit("g-3", "could not write")]
    settings = _settings(tmp_path, sqlite_url)
    with Runner(settings, model_factory=Scripts({"ml-engineer": lead, "security-expert": sec}).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        runner.run(mission_id)
    assert not (workspace / "x.txt").exists()
    with session_scope(sqlite_url) as session:
        row = session.scalar(select(ToolCall).where(ToolCall.call_id == "g-2"))
        assert row is not None and row.decision == "denied" and "not allowed for this agent" in row.result


@pytest.mark.parametrize("field", ["payload", "actor", "kind"])
def test_editing_any_audit_row_is_detected_and_named(tmp_path: Path, db_url: str, workspace: Path,
                                                     field: str) -> None:
    with Runner(_settings(tmp_path, db_url), model_factory=Scripts(full_path()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        runner.run(mission_id)
    events = _events(db_url, mission_id)
    victim = events[len(events) // 2]
    with session_scope(db_url) as session:
        row = session.get(Event, victim.id)
        assert row is not None
        if field == "payload":
            row.payload = {**row.payload, "forged": True}
        elif field == "actor":
            row.actor = "mallory"
        else:
            row.kind = "tampered"
    with session_scope(db_url) as session:
        report = verify_chain(session, mission_id)
    assert not report.intact
    assert (report.first_bad_seq, report.first_bad_id) == (victim.seq, victim.id)


def test_deleting_an_audit_row_is_detected(tmp_path: Path, sqlite_url: str, workspace: Path) -> None:
    with Runner(_settings(tmp_path, sqlite_url), model_factory=Scripts(full_path()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        runner.run(mission_id)
    events = _events(sqlite_url, mission_id)
    with session_scope(sqlite_url) as session:
        session.delete(session.get(Event, events[3].id))
    with session_scope(sqlite_url) as session:
        report = verify_chain(session, mission_id)
    assert not report.intact and report.first_bad_seq == events[3].seq  # the missing one is named


@pytest.fixture
def demo_workspace(workspace: Path) -> Path:
    from tools.ml.demo import build_demo_workspace

    build_demo_workspace(workspace)
    return workspace


def _failing_evaluation_scripts(*, second_round_candidate: bool) -> dict:
    evaluate_args = {"model_path": "models/anomaly-detector", "reference_path": "data/reference.csv",
                     "current_path": "data/current.csv"}
    second = dict(evaluate_args, candidate_path="models/anomaly-detector-candidate") if second_round_candidate \
        else evaluate_args
    lead = [
        handoff("data-scientist", "fe-align", "Align thresholds"), ai("aligned"),
        ai("designed"), ai("implemented"),
        ai("", call("evaluate_model", "fe-eval-1", **evaluate_args)), ai("evaluation 1 below thresholds"),
        ai("", call("evaluate_model", "fe-eval-2", **second)), ai("evaluation 2 done"),
        ai("packaged"), ai("released"), ai("reported"),
    ]
    retrain = [ai("", call("retrain_candidate", "fe-ds-3", model_path="models/anomaly-detector",
                           reference_path="data/reference.csv", current_path="data/current.csv",
                           label_column="is_anomaly"))] \
        if second_round_candidate else []
    ds = [ai("", call("align_data", "fe-ds-1", model_path="models/anomaly-detector",
                      reference_path="data/reference.csv", current_path="data/current.csv",
                      constraints=["alert on precision drop >5%"])),
          submit("fe-ds-2", "thresholds written"),
          *retrain, submit("fe-ds-4", "diagnosed the shift")]
    return {"ml-engineer": lead, "data-scientist": ds}


def test_failed_evaluation_goes_to_the_data_scientist_then_escalates(tmp_path: Path, sqlite_url: str,
                                                                   demo_workspace: Path) -> None:
    scripts = Scripts(_failing_evaluation_scripts(second_round_candidate=False))
    with Runner(_settings(tmp_path, sqlite_url, max_eval_rounds=2), model_factory=scripts.factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=demo_workspace)
        assert runner.run(mission_id) == "waiting_approval"
        view = _view(sqlite_url, mission_id)
        [escalation] = [a for a in view["approvals"] if a["status"] == "pending"]
        assert escalation["kind"] == "escalation" and "after 2 rounds" in escalation["question"]
        runner.decide(mission_id, decision="approved", actor="lead-reviewer", comment="ship with monitoring")
        assert runner.run(mission_id) == "waiting_approval"  # the release gate
        runner.decide(mission_id, decision="approved", actor="lead-reviewer")
        # A human accepted a failed check: the mission went on, and its end says so.
        assert runner.run(mission_id) == "completed_with_risks"
    view = _view(sqlite_url, mission_id)
    assert "evaluate failed" in view["reason"] and "accepted by lead-reviewer" in view["reason"]
    remediation = [d for d in view["delegations"] if d["reason"] == "underperforms"]
    assert [(d["from_agent"], d["to_agent"], d["step"]) for d in remediation] == [
        ("ml-engineer", "data-scientist", "evaluate")]
    assert "precision" in remediation[0]["brief"]["context"]
    evaluate = next(s for s in view["steps"] if s["name"] == "evaluate")
    assert evaluate["rounds"] == 2 and evaluate["status"] == "failed" and "precision" in evaluate["reason"]
    assert "risk.accepted" in [e.kind for e in _events(sqlite_url, mission_id)]


def test_rejected_escalation_fails_the_mission(tmp_path: Path, sqlite_url: str, demo_workspace: Path) -> None:
    scripts = Scripts(_failing_evaluation_scripts(second_round_candidate=False))
    with Runner(_settings(tmp_path, sqlite_url, max_eval_rounds=2), model_factory=scripts.factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=demo_workspace)
        assert runner.run(mission_id) == "waiting_approval"
        runner.decide(mission_id, decision="rejected", actor="lead-reviewer")
        assert runner.run(mission_id) == "failed"
    view = _view(sqlite_url, mission_id)
    assert "rejected at review by lead-reviewer" in view["reason"] and "precision" in view["reason"]
    assert next(s for s in view["steps"] if s["name"] == "evaluate")["status"] == "failed"
    assert all(s["status"] == "pending" for s in view["steps"] if s["name"] in ("package", "release", "report"))


def test_retrained_candidate_passes_re_evaluation(tmp_path: Path, sqlite_url: str, demo_workspace: Path) -> None:
    scripts = Scripts(_failing_evaluation_scripts(second_round_candidate=True))
    with Runner(_settings(tmp_path, sqlite_url), model_factory=scripts.factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=demo_workspace, auto_approve_by="test")
        assert runner.run(mission_id) == "completed"
    view = _view(sqlite_url, mission_id)
    assert [a["kind"] for a in view["approvals"]] == ["release"]  # no escalation was needed
    assert [s["rounds"] for s in view["steps"] if s["name"] == "evaluate"] == [2]
