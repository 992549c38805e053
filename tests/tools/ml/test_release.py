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
    for heading in ("## Rollout", "## Rollback", "## Monitoring and alert thresholds", "## Resources and cost"):
        assert heading in text
    assert "kubectl patch cronjob" in text and "rows/s" in text and notes["path"] == "docs/deployment-notes.md"


def test_cronjob_check_names_missing_keys() -> None:
    problems = check_cronjob("apiVersion: batch/v1\nkind: CronJob\nspec:\n  schedule: '0 1 * *'\n")
    assert "missing metadata.name" in problems
    assert "spec.schedule is not a 5-field cron expression" in problems
