"""Security review findings and the generated online inference app."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import ToolError
from tests.support.workspaces import build_workspace
from tests.tools.ml.support import call
from tools.context import ToolContext
from tools.ml.demo import DemoInfo
from tools.ml.security import security_scan
from tools.ml.serving import (LOAD_TEST_PATH, generate_inference_service, load_test, load_test_check,
                              load_test_service, review_scoring_interface)
from tools.tests_runner import run_tests


def test_clean_demo_has_no_blocking_finding(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    result = call(security_scan, tool_ctx)
    assert result["status"] == "ok" and result["counts"]["high"] == 0
    assert any(f["category"] == "unsafe-load" and f["path"].endswith("model.joblib") for f in result["findings"])
    assert {lic["package"] for lic in result["licences"]} >= {"numpy", "scikit-learn"}
    assert tool_ctx.signals == []


def test_secret_and_pii_are_high_and_signal_compliance(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    (tool_ctx.workspace / "pipelines/settings.py").write_text('API_KEY = "sk_live_0123456789abcdef"\n')
    (tool_ctx.workspace / "data/customers.csv").write_text("customer_id,email,amount\n1,a@b.c,3\n")
    result = call(security_scan, tool_ctx)
    titles = {(f["category"], f["path"]) for f in result["findings"] if f["severity"] == "high"}
    assert ("secret", "pipelines/settings.py") in titles and ("pii", "data/customers.csv") in titles
    assert result["status"] == "failed" and result["blocking"] and [s.kind for s in tool_ctx.signals] == ["compliance"]


SERVICE_CASES = {
    # kind: (workspace options, a feature and its request type, the keys of one prediction)
    "binary": ({}, ("x0", "number"), {"label", "probabilities", "score"}),
    "multiclass": ({"data_format": "parquet"}, ("region", "string"), {"label", "probabilities"}),
    "regression": ({}, ("x0", "number"), {"value"}),
    "anomaly": ({}, ("x0", "number"), {"anomaly", "score"}),
}


@pytest.mark.parametrize("kind", list(SERVICE_CASES), ids=list(SERVICE_CASES))
def test_the_service_fits_every_kind_and_its_tests_pass_in_the_sandbox(tool_ctx: ToolContext, kind: str) -> None:
    options, (feature, typed), keys = SERVICE_CASES[kind]
    ws = build_workspace(tool_ctx.workspace, kind=kind, rows=400, **options)
    result = call(generate_inference_service, tool_ctx, model_path=ws.model_dir, sample_data_path=ws.reference)
    assert result["kind"] == kind and result["feature_types"][feature] == typed
    assert list(result["feature_types"]) == ws.features
    tests = call(run_tests, tool_ctx, path=result["tests"])  # in the sandbox: the model loads only there
    assert (tests["failed"], tests["errors"], tests["passed"]) == (0, 0, 7), tests["failures"]
    app = (tool_ctx.workspace / "service/app.py").read_text()
    for key in keys:
        assert f"    {key}: " in app  # the response model of the kind
    if kind == "multiclass":  # string labels kept as strings, the string column validated as text
        assert "CLASSES: list[Any] | None = ['high', 'low', 'medium']" in app
        assert '"region": "string"' in app


def test_the_load_test_measures_latency_against_each_target(tool_ctx: ToolContext) -> None:
    ws = build_workspace(tool_ctx.workspace, kind="multiclass", rows=300)
    call(generate_inference_service, tool_ctx, model_path=ws.model_dir, sample_data_path=ws.reference)
    result = call(load_test_service, tool_ctx, requests=60,
                  constraints=["p50 latency under 30 seconds", "p99 latency under 0.001 ms"])
    latency = result["latency_ms"]
    assert result["requests"] == 60 and result["errors"] == 0 and result["statuses"] == {"200": 60}
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    targets = {t["percentile"]: t for t in result["targets"]}
    assert targets["p50"]["passed"] and targets["p50"]["measured_ms"] == latency["p50"]
    assert not targets["p99"]["passed"] and not result["passes"]  # a target no service can meet is missed
    assert json.loads((tool_ctx.workspace / LOAD_TEST_PATH).read_text()) == result
    name, detail, ok = load_test_check(tool_ctx.workspace)
    assert not ok and "p99" in detail and "MISSED" in detail and "p50" in detail


def test_the_load_test_needs_the_service(tool_ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="generate the service first"):
        load_test(tool_ctx, requests=50)


def test_scoring_interface_review(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    result = call(review_scoring_interface, tool_ctx)
    assert result["status"] == "ok"
    text = (tool_ctx.workspace / "docs/scoring-interface-review.md").read_text()
    assert "input columns cover the model features | ok" in text
