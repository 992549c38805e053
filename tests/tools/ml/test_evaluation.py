"""Alignment and evaluation on demo workspaces: drift flags, the precision alert, bias, no-label fallback."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from orchestrator.errors import UnusableInput
from tests.support.records import recorded_artifacts
from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.demo import DemoInfo, build_demo_workspace
from tools.ml.evaluation import evaluate_model

CONSTRAINTS = ["Run nightly within 2-hour window", "alert on precision drop >5%"]


def _align_and_evaluate(ctx: ToolContext, **extra: str) -> tuple[dict, dict]:
    aligned = call(align_data, ctx, **PATHS, constraints=CONSTRAINTS, **extra)
    evaluated = call(evaluate_model, ctx, **PATHS, **extra)
    return aligned, evaluated


def test_constraints_become_thresholds_in_the_alignment(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    aligned = call(align_data, tool_ctx, **PATHS, constraints=CONSTRAINTS + ["p95 latency under 50 ms", "be nice"])
    doc = json.loads((tool_ctx.workspace / "reports/alignment.json").read_text())
    assert doc["constraints"]["metric_drops"] == {"precision": 0.05}
    assert doc["constraints"]["window_hours"] == 2.0 and doc["constraints"]["latency_ms"] == 50.0
    assert doc["constraint_set"]["schedule"]["cron"] == "0 1 * * *"
    assert "be nice" in doc["constraints"]["unparsed"]
    assert any(f["title"] == "constraint not understood" and "be nice" in f["detail"] for f in aligned["findings"])
    precision = doc["thresholds"]["metrics"]["precision"]
    assert precision["direction"] == "below" and precision["limit"] == precision["floor"] == aligned["precision_floor"]


def test_drift_flags_equal_the_injected_shift_and_precision_alert_fires(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    aligned, result = _align_and_evaluate(tool_ctx)
    floor = aligned["precision_floor"]
    assert floor == round(aligned["baseline"]["precision"] * 0.95, 6)
    assert aligned["min_labelled_rows"] > 0
    doc = json.loads((tool_ctx.workspace / "reports/evaluation.json").read_text())
    flagged = sorted(f["name"] for f in doc["drift"]["features"] if f["drifted"])
    assert flagged == sorted(demo.injected_shift)
    assert all({"name", "psi", "drifted", "test", "p_value"} <= set(f) for f in doc["drift"]["features"])
    alerts = {a["name"]: a for a in doc["alerts"]}
    assert alerts["feature_drift"]["fired"]
    assert alerts["precision_drop"]["fired"] and alerts["precision_drop"]["threshold"] == floor
    assert alerts["precision_drop"]["value"] < floor
    assert [s.kind for s in tool_ctx.signals] == ["underperforms"]
    assert result["status"] == "fail"
    kinds = {a["path"]: (a["kind"], a["agent"], a["step"]) for a in recorded_artifacts(tool_ctx)}
    for path in ("reports/alignment.json", "reports/evaluation.json", "reports/evaluation.html", "monitoring/alerts.yaml"):
        assert kinds[path][1:] == ("ml-engineer", "implement")


def test_html_report_is_self_contained(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _align_and_evaluate(tool_ctx)
    html = (tool_ctx.workspace / "reports/evaluation.html").read_text()
    assert "<svg" in html and "<table>" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
    for name in demo.injected_shift:
        assert name in html


def test_no_shift_raises_no_drift_alert(tool_ctx: ToolContext) -> None:
    build_demo_workspace(tool_ctx.workspace, shift=False)
    _, result = _align_and_evaluate(tool_ctx)
    drift = next(a for a in result["alerts"] if a["name"] == "feature_drift")
    assert not drift["fired"] and result["drifted"] == []


def test_segment_column_gets_bias_figures(tool_ctx: ToolContext) -> None:
    build_demo_workspace(tool_ctx.workspace, segment=True)
    _, result = _align_and_evaluate(tool_ctx, segment_column="site")
    doc = json.loads((tool_ctx.workspace / "reports/evaluation.json").read_text())
    assert doc["bias"]["sensitive_features"] == ["site"]
    assert {g["value"] for g in doc["bias"]["groups"]} == {"north", "south", "east"}
    assert all(g["rows"] > 1000 and "precision" in g["metrics"] for g in doc["bias"]["groups"])
    recall = next(d for d in doc["bias"]["disparities"] if d["metric"] == "recall")
    assert 0 < recall["ratio"] <= 1 and recall["difference"] >= 0
    assert result["bias"]["passes"] == doc["bias"]["passes"]
    assert "bias_disparity" in {a["name"] for a in doc["alerts"]}


def test_no_labels_without_a_named_metric_falls_back_to_alert_rate(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    current = tool_ctx.workspace / "data/current.csv"
    pd.read_csv(current).drop(columns=["is_anomaly"]).to_csv(current, index=False)
    aligned = call(align_data, tool_ctx, **PATHS, constraints=["Run nightly within 2-hour window"])
    result = call(evaluate_model, tool_ctx, **PATHS)
    assert any("metrics cannot be measured" in f["detail"] for f in result["findings"])
    assert not result["labelled"]
    alerts = {a["name"]: a for a in result["alerts"]}
    assert "alert_rate" in alerts and not alerts["precision_drop"]["fired"]  # the default rule: not measurable
    doc = json.loads((tool_ctx.workspace / "reports/evaluation.json").read_text())
    precision = next(a for a in doc["alerts"] if a["name"] == "precision_drop")
    assert precision["measured"] is False and "no labels" in precision["note"]
    assert aligned["alert_rate_ceiling"] > aligned["baseline"]["alert_rate"]
    assert "underperforms" not in [s.kind for s in tool_ctx.signals]


def test_no_labels_when_the_mission_names_a_metric_is_unusable_input(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    current = tool_ctx.workspace / "data/current.csv"
    pd.read_csv(current).drop(columns=["is_anomaly"]).to_csv(current, index=False)
    with pytest.raises(UnusableInput) as caught:
        call(align_data, tool_ctx, **PATHS, constraints=CONSTRAINTS)
    assert caught.value.path == "data/current.csv" and "precision_drop" in str(caught.value)
    assert "is_anomaly" in caught.value.fix
