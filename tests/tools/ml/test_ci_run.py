"""The generated CI workflow run locally: its run: steps in order in the sandbox, each with exit code and duration;
uses: steps reported as not run locally; a failed step fails the run and skips the rest of its job."""

from __future__ import annotations

import json

import yaml

from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.ci_run import CI_RUN_PATH, ci_check, run_ci_workflow
from tools.ml.demo import DemoInfo
from tools.ml.packaging import build_container
from tools.ml.pipeline import generate_batch_pipeline
from tools.ml.schedule import write_ci_workflow, write_schedule

CONSTRAINTS = ["Run nightly within 2-hour window", "alert on precision drop >5%"]


def test_the_workflow_runs_step_by_step_in_the_sandbox(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    ws = tool_ctx.workspace
    call(align_data, tool_ctx, **PATHS, constraints=CONSTRAINTS)
    call(generate_batch_pipeline, tool_ctx)
    call(build_container, tool_ctx)
    call(write_schedule, tool_ctx, constraints=CONSTRAINTS)
    call(write_ci_workflow, tool_ctx, constraints=CONSTRAINTS)
    result = call(run_ci_workflow, tool_ctx)
    assert result["status"] == "ok", result["failures"]
    workflow = yaml.safe_load((ws / ".github/workflows/batch-scoring.yml").read_text())
    declared = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert result["run_steps"] == sum("run" in s for s in declared) == result["passed"] == 4
    assert result["not_run_locally"] == sum("uses" in s for s in declared) == 4
    steps = {s["name"]: s for s in result["steps"]}
    assert [s["name"] for s in result["steps"] if s["exit_code"] is not None] == [
        s["name"] for s in declared if "run" in s]  # in the workflow's order
    assert all(s["exit_code"] == 0 and s["duration_s"] > 0 for s in steps.values() if s["exit_code"] is not None)
    assert {s["status"] for s in steps.values() if s["exit_code"] is None} == {"not_run_locally"}
    doc = json.loads((ws / CI_RUN_PATH).read_text())
    hadolint = next(s for j in doc["jobs"] for s in j["steps"] if s.get("uses", "").startswith("hadolint/"))
    assert hadolint["status"] == "not_run_locally" and "linted by hadolint at package time (exit code 0" in hadolint["stand_in"]
    name, detail, ok = ci_check(ws)
    assert ok and "4 of 4 run: steps passed" in detail and "Dry run: exit 0" in detail

    # The CronJob no longer matches the plan: the check step fails with its own words, and the run says so.
    cron = ws / "deploy/cronjob.yaml"
    cron.write_text(cron.read_text().replace('schedule: "0 1 * * *"', 'schedule: "0 3 * * *"'))
    broken = call(run_ci_workflow, tool_ctx)
    assert broken["status"] == "error" and broken["failed"] == 1
    [failure] = broken["failures"]
    assert failure["exit_code"] == 1 and "schedule '0 3 * * *' != '0 1 * * *'" in failure["stdout_tail"]
    assert not ci_check(ws)[2]

    # A step that fails skips the rest of its job, as on a hosted runner.
    (ws / "pipelines/batch-scoring.yaml").write_text("chunk_size: 0\n")
    skipped = call(run_ci_workflow, tool_ctx)
    assert [s["status"] for s in skipped["steps"][2:6]] == ["passed", "failed", "skipped", "skipped"]
