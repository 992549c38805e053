"""Every release deliverable carries the mission's constraints: the CronJob's schedule and deadline, the CI
check, the deployment notes and the capacity verdict equal what the mission said, in the seed's form or free text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.config import Settings
from orchestrator.constraints import format_duration
from orchestrator.db import session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.schema import upgrade
from orchestrator.mission import parse_mission
from orchestrator.recorder import DatabaseRecorder
from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import ALIGNMENT_PATH, align_data
from tools.ml.capacity import COST_PATH, estimate_capacity
from tools.ml.demo import build_demo_workspace
from tools.ml.pipeline import generate_batch_pipeline
from tools.ml.release import NOTES_PATH, write_deployment_notes
from tools.ml.schedule import CI_PATH, SCHEDULE_PATH, write_ci_workflow, write_schedule


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolContext]:
    """One demo workspace, aligned and with its pipeline generated (the slow part), shared by the module."""
    root = tmp_path_factory.mktemp("deliverables")
    url = f"sqlite:///{root / 'orchestrator.db'}"
    upgrade(url)
    workspace = root / "workspace"
    workspace.mkdir()
    with session_scope(url) as session:
        mission_id = create_mission(session, text="Mission: test", spec={"objective": "test"},
                                    workspace=str(workspace)).id
    ctx = ToolContext(workspace=workspace, mission_id=mission_id, agent="devops-engineer", step="release",
                      settings=Settings(home=root / "home", database_url=url, _env_file=None),
                      recorder=DatabaseRecorder(url, mission_id, agent="devops-engineer", step="release"))
    build_demo_workspace(workspace)
    call(align_data, ctx, **PATHS, constraints=["alert on precision drop >5%"])
    call(generate_batch_pipeline, ctx)
    yield ctx


def _fresh(ctx: ToolContext) -> ToolContext:
    """The shared context with no signals left from an earlier call."""
    ctx.signals.clear()
    return ctx


MISSIONS = {
    "seed-weekly-30min": ("Mission: Productionize the anomaly model with batch scoring.\n"
                          "Constraints: Run weekly on Monday at 3am within 30 minutes; alert on recall drops more "
                          "than 3%\n", "0 3 * * 1", 1800),
    "seed-cron-10min": ("Mission: Score the anomaly model.\nConstraints: cron 0 3 * * 1-5; each run under 10 minutes; "
                        "keep it cheap\n", "0 3 * * 1-5", 600),
    "free-hourly": ("Productionize models/anomaly-detector. It has to finish within 30 minutes and we want drift "
                    "alerts. Run it hourly.", "0 * * * *", 1800),
    "free-6h-45min": ("Please score the anomaly model every 6 hours; it must finish in 45 min.", "0 */6 * * *", 2700),
    "free-by-6am": ("Score the anomaly model nightly starting at 10pm; results ready by 6am.", "0 22 * * *", 8 * 3600),
    "no-constraints": ("Mission: Productionize the anomaly model.", "0 1 * * *", 7200),
}


@pytest.mark.parametrize(("text", "cron", "deadline"), MISSIONS.values(), ids=MISSIONS.keys())
def test_cronjob_ci_and_notes_equal_the_mission(ready: ToolContext, text: str, cron: str, deadline: int) -> None:
    cs = parse_mission(text).constraint_set
    clauses = list(cs.clauses)
    schedule = call(write_schedule, ready, constraints=clauses)
    manifest = yaml.safe_load((ready.workspace / SCHEDULE_PATH).read_text())
    assert schedule["status"] == "ok", schedule["problems"]
    assert manifest["spec"]["schedule"] == schedule["schedule"] == cron
    assert manifest["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == schedule["deadline_seconds"] == deadline
    # Where the mission says nothing, the pipeline config's schedule (the demo's nightly 2 h) is used.
    assert schedule["sources"]["schedule"] == ("mission" if cs.schedule else "config")

    ci = call(write_ci_workflow, ready, constraints=clauses)
    workflow = yaml.safe_load((ready.workspace / CI_PATH).read_text())
    check = next(s for s in workflow["jobs"]["validate"]["steps"]
                 if s.get("name", "").startswith("Check the schedule"))
    assert ci["status"] == "ok", ci["problems"]
    assert check["env"] == {"EXPECTED_SCHEDULE": cron, "EXPECTED_DEADLINE_SECONDS": deadline}

    notes = call(write_deployment_notes, ready, constraints=clauses)
    text_md = (ready.workspace / NOTES_PATH).read_text()
    assert f"cron `{cron}`" in text_md and f"activeDeadlineSeconds {deadline}" in text_md
    assert f"inside the {format_duration(deadline)} window" in text_md
    assert notes["not_understood"] == list(cs.not_understood)
    for item in cs.not_understood:
        assert f"“{item}”" in text_md


def test_the_ci_check_passes_on_the_manifest_and_fails_on_another(ready: ToolContext, tmp_path: Path) -> None:
    """Run the workflow's own check script against the written manifest, then against a nightly one."""
    clauses = ["weekly on Monday at 3am", "within 30 minutes"]
    call(write_schedule, ready, constraints=clauses)
    call(write_ci_workflow, ready, constraints=clauses)
    step = next(s for s in yaml.safe_load((ready.workspace / CI_PATH).read_text())["jobs"]["validate"]["steps"]
                if s.get("name", "").startswith("Check the schedule"))
    script = step["run"].split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    env = {**os.environ, **{k: str(v) for k, v in step["env"].items()}}
    ok = subprocess.run([sys.executable, "-c", script], cwd=ready.workspace, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    other = tmp_path / "deploy"
    other.mkdir()
    manifest = (ready.workspace / SCHEDULE_PATH).read_text().replace('schedule: "0 3 * * 1"', 'schedule: "0 1 * * *"')
    (other / "cronjob.yaml").write_text(manifest)
    bad = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "'0 1 * * *' != '0 3 * * 1'" in bad.stdout


def test_constraints_recorded_at_alignment_are_used_when_none_are_passed(ready: ToolContext) -> None:
    cs = parse_mission("Score it every 15 minutes; each run under 5 minutes.").constraint_set
    alignment = json.loads((ready.workspace / ALIGNMENT_PATH).read_text())
    stored = {**alignment, "constraint_set": cs.model_dump(mode="json")}
    (ready.workspace / ALIGNMENT_PATH).write_text(json.dumps(stored))
    try:
        schedule = call(write_schedule, ready)
    finally:
        (ready.workspace / ALIGNMENT_PATH).write_text(json.dumps(alignment))
    assert (schedule["schedule"], schedule["deadline_seconds"]) == ("*/15 * * * *", 300)


def test_capacity_verdict_uses_the_mission_window_volume_and_schedule(ready: ToolContext) -> None:
    text = ("Mission: Score the anomaly model weekly on Monday.\n"
            "Constraints: within 30 minutes; 100k rows per run; budget of 50 USD per month\n")
    cs = parse_mission(text).constraint_set
    result = call(estimate_capacity, _fresh(ready), benchmark_rows=5_000, constraints=list(cs.clauses))
    assert result["fits"] and "fits the 30 min window" in result["verdict"] and "2 h" not in result["verdict"]
    assert (result["window_seconds"], result["window_source"], result["expected_rows"]) == (1800, "mission", 100_000)
    assert result["schedule"]["cron"] == "0 1 * * 1" and result["cost"]["runs_per_month"] == 4.33
    assert result["cost"]["per_month_usd"] == pytest.approx(result["cost"]["per_run_usd"] * 4.33, abs=0.01)
    assert result["budget"]["within"] is True and ready.signals == []


def test_capacity_beyond_the_mission_window_and_budgets_is_reported(ready: ToolContext) -> None:
    clauses = ["hourly", "each run under 1 minute", "5M rows per run", "$0.001 per month", "under 10 MB of memory"]
    result = call(estimate_capacity, _fresh(ready), benchmark_rows=5_000, constraints=clauses)
    assert not result["fits"] and "does NOT fit the 1 min window" in result["verdict"]
    assert [s.kind for s in ready.signals] == ["infrastructure"]
    assert result["cost"]["runs_per_month"] == 720.0 and result["budget"]["within"] is False
    titles = {f["title"] for f in result["findings"] if f["severity"] == "high"}
    assert {"over the cost budget", "over the memory budget"} <= titles
    schedule = call(write_schedule, ready, constraints=clauses)
    assert schedule["status"] == "failed" and schedule["memory_limit_mb"] == 9
    assert any("exceeds the mission's budget" in p for p in schedule["problems"])
    stored = json.loads((ready.workspace / COST_PATH).read_text())
    assert stored["window_seconds"] == 60 and stored["verdict"] == result["verdict"]
