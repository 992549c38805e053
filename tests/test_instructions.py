"""The user's messages during a run, with the built-in planner: it acts on the instructions it recognises
(a new run window sent while the mission runs, a new schedule sent back with the release as "request
changes") and says plainly which it cannot."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from agents.playbooks.instructions import read_instructions, reply_to
from orchestrator.audit import append_event
from orchestrator.config import Settings
from orchestrator.constraints import parse_constraints
from orchestrator.db import session_scope
from orchestrator.db.models import Event, Step
from orchestrator.events import EventKind
from orchestrator.mission import parse_mission
from orchestrator.runner import Runner
from orchestrator.views import mission_view
from tools.ml.demo import build_demo_workspace

MISSION = resources.files("orchestrator.data").joinpath("anomaly-batch-scoring.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("message", "window", "readme", "no_image"), [
    ("use a 1-hour window", 3600, False, False),
    ("Please make each run finish within 45 minutes, and also add a README", 2700, True, False),
    ("skip the Docker image for now", 7200, False, True),
    ("paint the dashboard blue", 7200, False, False),
])
def test_instructions_amend_what_the_deliverables_follow(message: str, window: int, readme: bool,
                                                         no_image: bool) -> None:
    mission = parse_mission(MISSION)
    got = read_instructions(mission, [message])
    amended = parse_constraints(list(got.clauses))
    assert amended.window_seconds == window and amended.cron == mission.constraint_set.cron
    assert [a.name for a in amended.alerts] == [a.name for a in mission.constraint_set.alerts]
    assert (got.add_readme, got.skip_container) == (readme, no_image)
    assert ("cannot act on" in reply_to(message)) == (message.startswith("paint"))


@pytest.mark.parametrize(("text", "readme", "no_image"), [
    ("Put the demand model in production with nightly batch scoring. Also, please add a README.", True, False),
    ("Serve the churn model online; skip the Docker image, we build our own.", False, True),
    ("Productionize the risk model with drift monitoring.", False, False),
])
def test_what_the_mission_itself_asks_for_counts_as_an_instruction(text: str, readme: bool, no_image: bool) -> None:
    got = read_instructions(parse_mission(text), [])
    assert (got.add_readme, got.skip_container) == (readme, no_image)


@pytest.mark.slow
@pytest.mark.mission
@pytest.mark.timeout(900)  # a whole mission with two release rounds: ~3 min on two busy cores
def test_messages_sent_while_the_mission_runs_change_the_schedule_deliverables(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    # No drift: the evaluation passes as it stands, so the run is about the messages, not a retrained model.
    build_demo_workspace(ws, shift=False, reference_rows=1500, current_rows=1200, expected_rows_per_night=100_000)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'o.db'}", _env_file=None)
    with Runner(settings) as runner:
        mission_id = runner.submit(MISSION, workspace=ws)

        def implemented() -> bool:  # asked between graph steps: the run pauses once implement is done
            with session_scope(runner.url) as session:
                return session.scalar(select(Step.status).where(Step.mission_id == mission_id,
                                                                Step.name == "implement")) == "done"

        assert runner.run(mission_id, should_stop=implemented) == "running"  # mid-run: implement done, no release
        assert not (ws / "deploy/cronjob.yaml").exists()
        with session_scope(runner.url) as session:  # what POST /missions/{id}/messages records
            for text in ("use a 1-hour window", "paint the dashboard blue"):
                append_event(session, mission_id=mission_id, kind=EventKind.USER_MESSAGE, actor="alice",
                             payload={"text": text})
        assert runner.run(mission_id) == "waiting_approval"  # the release gate
        job = yaml.safe_load((ws / "deploy/cronjob.yaml").read_text())["spec"]
        assert job["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600  # the mission said 2 h; the message 1 h
        assert job["schedule"] == "0 1 * * *"  # nightly stays: only the window changed
        assert "1 h" in (ws / "docs/deployment-notes.md").read_text()
        # A reviewer's comment at the gate is a message too: the release runs again and follows it.
        runner.decide(mission_id, decision="changes_requested", actor="alice", comment="run it every 6 hours")
        assert runner.run(mission_id) == "waiting_approval"
        runner.decide(mission_id, decision="approved", actor="alice")
        assert runner.run(mission_id) == "completed"
        with session_scope(runner.url) as session:
            view = mission_view(session, mission_id)
            said = [e.payload.get("text", "") for e in session.scalars(
                select(Event).where(Event.mission_id == mission_id, Event.kind == EventKind.MESSAGE))]
    job = yaml.safe_load((ws / "deploy/cronjob.yaml").read_text())["spec"]
    assert job["schedule"] == "0 */6 * * *"  # the comment's schedule...
    assert job["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600  # ...and the earlier message's window
    assert next(s for s in view["steps"] if s["name"] == "release")["rounds"] == 2
    assert any("cannot act on your message 'paint the dashboard blue'" in text for text in said)
    assert any("use a 1-hour window" in text and "Run window: 1 h" in text for text in said)
    assert any("run it every 6 hours" in text and "every 6 hours" in text.split("follow", 1)[-1] for text in said)
