"""Release: measured capacity against the window, schedule and CI checked statically, deployment notes."""

from __future__ import annotations

import yaml

from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.capacity import estimate_capacity
from tools.ml.demo import DemoInfo
from tools.ml.pipeline import generate_batch_pipeline
from tools.ml.release import write_deployment_notes
from tools.ml.schedule import check_cronjob, write_ci_workflow, write_schedule
from tools.ml.training import generate_training_pipeline


def _ready(ctx: ToolContext) -> None:
    call(align_data, ctx, **PATHS, constraints=["Run nightly within 2-hour window", "alert on precision drop >5%"])
    call(generate_batch_pipeline, ctx)


def test_capacity_is_measured_and_extrapolated(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _ready(tool_ctx)
    result = call(estimate_capacity, tool_ctx, benchmark_rows=20_000)
    assert result["fits"] and result["window_hours"] == 2.0 and result["expected_rows"] == 5_000_000
    minutes = 5_000_000 / result["rows_per_second"] / 60
    assert abs(result["projected_minutes"] - minutes) < 0.01 * minutes + 0.01
    assert "fits the 2 h window" in result["verdict"] and tool_ctx.signals == []


def test_volume_beyond_the_window_signals_infrastructure(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _ready(tool_ctx)
    result = call(estimate_capacity, tool_ctx, benchmark_rows=20_000, expected_rows=10**12)
    assert not result["fits"] and result["recommended_workers"] > 1
    assert [s.kind for s in tool_ctx.signals] == ["infrastructure"]


def test_schedule_ci_and_notes(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _ready(tool_ctx)
    call(estimate_capacity, tool_ctx, benchmark_rows=20_000)
    schedule = call(write_schedule, tool_ctx)
    assert schedule["status"] == "ok" and schedule["deadline_seconds"] == 7200
    cron = yaml.safe_load((tool_ctx.workspace / "deploy/cronjob.yaml").read_text())
    assert cron["kind"] == "CronJob" and cron["spec"]["schedule"] == "0 1 * * *"
    ci = call(write_ci_workflow, tool_ctx)
    assert ci["status"] == "ok" and (tool_ctx.workspace / ".github/workflows/batch-scoring.yml").is_file()
    notes = call(write_deployment_notes, tool_ctx)
    text = (tool_ctx.workspace / "docs/deployment-notes.md").read_text()
    for heading in ("## Rollout", "## Rollback", "## Monitoring and alert thresholds", "## On-call runbook",
                    "## Resources and cost"):
        assert heading in text
    assert notes["sections"][:4] == ["Mission constraints", "Validation status", "Rollout", "Rollback"]
    # The runbook has a row for each alert rule in force, each saying where to look and what to do.
    rules = yaml.safe_load((tool_ctx.workspace / "monitoring/alerts.yaml").read_text())["rules"]
    runbook = text.split("## On-call runbook", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in runbook.splitlines() if line.startswith("| ") and not line.startswith("| Alert")]
    assert [row.split(" | ")[0][2:] for row in rows] == [r["name"] for r in rules]
    assert "python -m pipelines.training --config pipelines/training.yaml" in runbook  # no retraining job here
    assert "kubectl patch cronjob" in text and "rows/s" in text and notes["path"] == "docs/deployment-notes.md"


def test_cronjob_check_names_missing_keys() -> None:
    problems = check_cronjob("apiVersion: batch/v1\nkind: CronJob\nspec:\n  schedule: '0 1 * *'\n")
    assert "missing metadata.name" in problems
    assert "spec.schedule is not a 5-field cron expression" in problems


def test_a_retraining_schedule_gets_its_own_cronjob_not_the_scoring_one(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    """'retrain weekly on Sunday 02:00' schedules the training pipeline; scoring keeps its own (nightly) plan."""
    asked = ["Run nightly within 2-hour window", "retrain weekly on Sunday 02:00"]
    _ready(tool_ctx)
    call(estimate_capacity, tool_ctx, benchmark_rows=20_000, constraints=asked)
    missing = call(write_schedule, tool_ctx, constraints=asked)  # no training pipeline yet: said, not faked
    assert missing["status"] == "failed" and missing["retraining"]["path"] is None
    assert any("no training pipeline" in p for p in missing["problems"])

    call(generate_training_pipeline, tool_ctx, **PATHS)
    schedule = call(write_schedule, tool_ctx, constraints=asked)
    assert schedule["status"] == "ok", schedule["problems"]
    scoring = yaml.safe_load((tool_ctx.workspace / "deploy/cronjob.yaml").read_text())
    retrain = yaml.safe_load((tool_ctx.workspace / "deploy/retrain-cronjob.yaml").read_text())
    assert scoring["spec"]["schedule"] == "0 1 * * *" and retrain["spec"]["schedule"] == "0 2 * * 0"
    container = retrain["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "pipelines.training"]
    assert container["args"] == ["--config", "pipelines/training.yaml"]
    assert check_cronjob((tool_ctx.workspace / "deploy/retrain-cronjob.yaml").read_text(),
                         expected_schedule="0 2 * * 0") == []
    assert schedule["retraining"] == {"path": "deploy/retrain-cronjob.yaml", "schedule": "0 2 * * 0",
                                      "schedule_text": "weekly on Sunday at 02:00 UTC", "deadline_seconds": 4 * 3600}
    call(write_deployment_notes, tool_ctx, constraints=asked)
    notes = (tool_ctx.workspace / "docs/deployment-notes.md").read_text()
    assert "Retraining: weekly on Sunday at 02:00 UTC" in notes and "deploy/retrain-cronjob.yaml" in notes
    assert "kubectl create job --from=cronjob/" in notes.split("## On-call runbook", 1)[1]  # retrain now, by hand
