"""The built-in planner's playbooks, driven directly against the real tools on demo workspaces."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.support.records import recorded_artifacts
from tests.tools.ml.support import BATCH_MISSION, ONLINE_MISSION, new_run
from tools.context import ToolContext
from tools.ml.demo import DemoInfo, build_demo_workspace


@pytest.mark.mission
def test_batch_mission_end_to_end(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    run = new_run(tool_ctx)
    aligned = run.step("align")
    assert aligned.status == "completed", aligned.summary
    alignment = json.loads((tool_ctx.workspace / "reports/alignment.json").read_text())
    assert str(alignment["thresholds"]["metrics"]["precision"]["floor"]) in aligned.summary

    design = run.step("design")
    assert design.status == "completed" and "no online endpoint built" in design.summary
    assert (tool_ctx.workspace / "docs/scoring-interface-review.md").is_file()

    implemented = run.step("implement")
    assert implemented.status == "completed", implemented.summary
    assert "Dry run exit code 0" in implemented.summary and "8 passed, 0 failed" in implemented.summary
    assert "Training pipeline pipelines/training generated" in implemented.summary

    first = run.step("evaluate")
    assert run.kinds("evaluate") == ["underperforms"]
    assert "precision_drop FIRED" in first.summary
    # The graph sends the Data Scientist, then evaluates again with the round incremented.
    fix = run.step("evaluate", agent="data-scientist", reason="underperforms")
    assert fix.status == "completed", fix.summary
    second = run.step("evaluate", round_=1)
    doc = json.loads((tool_ctx.workspace / "reports/evaluation.json").read_text())
    assert sorted(f["name"] for f in doc["drift"]["features"] if f["drifted"]) == sorted(demo.injected_shift)
    assert next(a for a in doc["alerts"] if a["name"] == "precision_drop")["fired"]
    assert doc["candidate"]["passes"] and doc["status"] == "candidate_passes"
    assert run.kinds("evaluate") == ["underperforms"]  # the second round raised nothing
    assert "passes" in second.summary

    packaged = run.step("package")
    assert packaged.status == "completed", packaged.summary
    assert "hadolint exit code 0 with 0 issues" in packaged.summary and "labels identical True" in packaged.summary
    assert "compliance" not in run.kinds()

    released = run.step("release")
    assert released.status == "completed", released.summary
    assert "fits the 2 h window" in released.summary

    reported = run.step("report")
    assert "0 failed" in reported.summary, reported.summary
    report = (tool_ctx.workspace / "reports/mission-report.md").read_text()
    # The local CI run at release ran the dry run and the tests: the report reads them from it.
    assert "Dry run: exit 0" in report and "Tests: exit 0" in report

    ws = tool_ctx.workspace
    for rel in ("pipelines/batch_scoring/__main__.py", "tests/test_batch_scoring.py", "reports/evaluation.json",
                "reports/evaluation.html", "monitoring/alerts.yaml", "models/anomaly-detector-candidate/model.onnx",
                "Dockerfile", "registry/index.json", "reports/reproducibility-manifest.json", "deploy/cronjob.yaml",
                ".github/workflows/batch-scoring.yml", "docs/deployment-notes.md", "docs/design.md"):
        assert (ws / rel).is_file(), rel
    by_path = {a["path"]: a for a in recorded_artifacts(tool_ctx)}
    assert by_path["reports/alignment.json"]["agent"] == "data-scientist"
    assert (by_path["docs/deployment-notes.md"]["agent"], by_path["docs/deployment-notes.md"]["step"]) == \
        ("devops-engineer", "release")
    assert (by_path["reports/security.json"]["agent"], by_path["reports/security.json"]["step"]) == \
        ("security-expert", "package")
    assert by_path["pipelines/batch_scoring/scoring.py"]["step"] == "implement"


def test_online_mission_builds_a_tested_app(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    run = new_run(tool_ctx, ONLINE_MISSION)
    assert run.mission.serving_mode == "online"
    run.step("align")
    design = run.step("design")
    assert "7 passed, 0 failed, 0 errors" in design.summary
    assert ("backend-developer", "design", "run_tests") in run.calls
    # The load test measured p95 against the mission's 50 ms: the step's status follows the measured figure.
    load = json.loads((tool_ctx.workspace / "reports/load-test.json").read_text())
    [target] = load["targets"]
    assert (target["percentile"], target["max_ms"], target["measured_ms"]) == ("p95", 50.0, load["latency_ms"]["p95"])
    assert f"p95 {load['latency_ms']['p95']} ms" in design.summary
    assert design.status == ("completed" if target["passed"] and not load["errors"] else "failed"), design.summary


def test_unlabelled_batch_evaluates_on_alert_rate(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    """No labels and no metric named by the mission: the alert rate stands in for precision."""
    current = tool_ctx.workspace / "data/current.csv"
    pd.read_csv(current).drop(columns=["is_anomaly"]).to_csv(current, index=False)
    run = new_run(tool_ctx, BATCH_MISSION.replace("; alert on precision drop >5%", ""))
    aligned = run.step("align")
    assert aligned.status == "completed"
    result = run.step("evaluate")
    assert "precision cannot be measured" in result.summary and "alert_rate" in result.summary
    assert "underperforms" not in run.kinds()


def test_missing_model_blocks_alignment_with_a_finding(tool_ctx: ToolContext) -> None:
    build_demo_workspace(tool_ctx.workspace)
    (tool_ctx.workspace / "models/anomaly-detector/model.joblib").write_bytes(b"garbage")
    result = new_run(tool_ctx).step("align")
    assert result.status == "blocked"
    assert any(f.severity == "high" and "cannot be loaded" in f.detail for f in result.findings)
