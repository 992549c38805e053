"""Every model kind, from generated workspaces: detection from the artifact, metrics per kind with the rule the
mission names, bias when asked, batch folders and Parquet, ONNX export, and broken inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from orchestrator.errors import UnusableInput
from tests.support.workspaces import BROKEN, INJECTION, build_workspace, break_workspace
from tests.tools.ml.support import call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.data import inspect_model, locate_inputs
from tools.ml.evaluation import evaluate_model
from tools.ml.metrics import Outcome, metric, supports
from tools.ml.packaging import export_onnx_model
from tools.ml.remediation import retrain_candidate
from tools.ml.sampling import _values
from tools.ml.serving import review_scoring_interface

ALERT_FIELDS = {"name", "metric", "direction", "threshold", "value", "fired", "sample_sufficient"}


def _doc(ctx: ToolContext, name: str = "reports/evaluation.json") -> dict:
    return json.loads((ctx.workspace / name).read_text())


@pytest.mark.parametrize(("kind", "classes"), [("binary", [0, 1]), ("multiclass", ["high", "low", "medium"]),
                                               ("regression", None), ("anomaly", None)], ids=lambda v: str(v))
def test_kind_is_read_from_the_artifact_without_model_yaml(tool_ctx: ToolContext, kind: str, classes: list | None
                                                           ) -> None:
    ws = build_workspace(tool_ctx.workspace, kind=kind, metadata=False)
    info = call(inspect_model, tool_ctx, path=ws.model_dir)
    assert info["kind"] == kind and info["classes"] == classes
    assert info["features"] == ws.features
    if kind == "multiclass":
        assert [s["estimator"] for s in info["steps"]] == ["ColumnTransformer", "LogisticRegression"]
        assert info["input"] == "frame" and info["is_classifier"]


def test_model_yaml_wins_over_the_artifact(tool_ctx: ToolContext) -> None:
    ws = build_workspace(tool_ctx.workspace, kind="binary")
    meta = tool_ctx.workspace / ws.model_dir / "model.yaml"
    meta.write_text(meta.read_text() + "prediction:\n  kind: classifier\n  positive_label: 0\n")
    info = call(inspect_model, tool_ctx, path=ws.model_dir)
    assert info["kind"] == "binary" and info["positive_label"] == 0


CASES = {
    # kind: (constraint the mission states, expected rule name, workspace options, performance keys)
    "binary": ("recall drops more than 3%", "recall_drop", {}, {"precision", "recall", "roc_auc", "log_loss"}),
    "multiclass": ("macro F1 below 0.8", "f1_macro_below", {"data_format": "parquet"},
                   {"f1_macro", "precision_weighted", "per_class", "log_loss"}),
    "regression": ("MAE rises more than 10%", "mae_rise", {"batches": 3}, {"mae", "rmse", "r2", "mape"}),
    "anomaly": ("alert on precision drop >5%", "precision_drop", {}, {"precision", "alert_rate"}),
}


@pytest.mark.parametrize("kind", list(CASES), ids=list(CASES))
def test_each_kind_is_evaluated_with_the_rule_the_mission_names(tool_ctx: ToolContext, kind: str) -> None:
    constraint, rule, options, keys = CASES[kind]
    if options.get("data_format") == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (a project dependency to declare)")
    ws = build_workspace(tool_ctx.workspace, kind=kind, **options)
    aligned = call(align_data, tool_ctx, **ws.paths(), constraints=[constraint])
    assert aligned["model"]["kind"] == kind and aligned["rules"][next(iter(aligned["rules"]))]["name"] == rule
    result = call(evaluate_model, tool_ctx, **ws.paths())
    doc = _doc(tool_ctx)
    assert keys <= set(doc["performance"]["current"])
    alerts = {a["name"]: a for a in doc["alerts"]}
    assert ALERT_FIELDS <= set(alerts[rule]) and alerts[rule]["value"] is not None
    assert alerts[rule]["threshold"] == doc["thresholds"]["metrics"][alerts[rule]["metric"]]["limit"]
    assert ALERT_FIELDS <= set(alerts["feature_drift"])
    assert result["kind"] == kind and (tool_ctx.workspace / "reports/evaluation.html").is_file()
    if kind == "multiclass":
        assert [c["class"] for c in doc["performance"]["current"]["per_class"]] == ["high", "low", "medium"]
        assert doc["datasets"]["current"]["path"].endswith(".parquet")
    if kind == "regression":  # a folder of batches: each one checked under its name, the latest evaluated
        assert [h["name"] for h in doc["history"]] == ["batch-001", "batch-002", "batch-003"]
        assert doc["history"][0]["drifted"] == [] and doc["history"][-1]["drifted"] == [ws.features[0]]
        assert doc["datasets"]["current"]["path"] == ws.batches[-1]
        assert "batch-002" in (tool_ctx.workspace / "reports/evaluation.html").read_text()
    assert result["status"] in ("pass", "fail") and (result["status"] == "fail") == alerts[rule]["fired"]


@pytest.mark.parametrize("disparity", [True, False], ids=["planted-disparity", "fair"])
def test_bias_across_sex_fires_only_on_a_planted_disparity(tool_ctx: ToolContext, disparity: bool) -> None:
    ws = build_workspace(tool_ctx.workspace, kind="binary", sensitive="sex", disparity=disparity, metadata=False)
    call(align_data, tool_ctx, **ws.paths(), constraints=["check it for bias across sex"], label_column="label")
    result = call(evaluate_model, tool_ctx, **ws.paths())
    bias = _doc(tool_ctx)["bias"]
    assert bias["sensitive_features"] == ["sex"] and {g["value"] for g in bias["groups"]} == {"F", "M"}
    assert all({"feature", "value", "rows", "metrics"} <= set(g) for g in bias["groups"])
    assert {d["metric"] for d in bias["disparities"]} >= {"selection_rate", "recall", "precision"}
    alert = next(a for a in result["alerts"] if a["name"] == "bias_disparity")
    assert alert["fired"] is disparity and bias["passes"] is not disparity
    html = (tool_ctx.workspace / "reports/evaluation.html").read_text()
    assert "Bias across sex" in html and ("FAILS" in html) is disparity


def test_a_column_named_like_a_segment_gets_no_bias_check_nobody_asked_for(tool_ctx: ToolContext) -> None:
    """The multiclass workspace's ``region`` column is a feature: offered as a segment, not sliced by, no alert."""
    ws = build_workspace(tool_ctx.workspace, kind="multiclass", metadata=False)
    found = call(locate_inputs, tool_ctx, inputs=[ws.model_dir, ws.config])
    assert found["segment_column"] is None and found["segment_candidates"] == ["region"]
    call(align_data, tool_ctx, **ws.paths(), constraints=["alert when macro F1 below 0.8"],
         label_column=ws.label_column)
    result = call(evaluate_model, tool_ctx, **ws.paths(), segment_column=found["segment_column"] or "")
    assert _doc(tool_ctx)["bias"] is None
    assert not any(a["name"] == "bias_disparity" for a in result["alerts"])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "anomaly"])
def test_onnx_export_matches_for_every_kind(tool_ctx: ToolContext, kind: str) -> None:
    # 2,000 rows: enough for a regressor's float32 rounding to show on a prediction near 0 (it did, as a failure)
    ws = build_workspace(tool_ctx.workspace, kind=kind, rows=2000 if kind == "regression" else 600)
    parity = call(export_onnx_model, tool_ctx, model_path=ws.model_dir, data_path=ws.reference)
    assert parity["status"] == "ok" and parity["kind"] == kind
    assert parity["label_agreement"] == 1.0 or parity["max_abs_score_diff"] <= parity["tolerance"]
    # The tolerance is 1e-5, scaled for a regressor by its predictions' size (here targets of a few hundred).
    assert parity["tolerance"] == 1e-5 if kind != "regression" else 1e-5 < parity["tolerance"] < 1e-2
    assert (tool_ctx.workspace / ws.model_dir / "model.onnx").is_file()
    if kind == "multiclass":  # the string column is an input of its own
        assert "named column inputs" in parity["input"]
    onnx_info = call(inspect_model, tool_ctx, path=f"{ws.model_dir}/model.onnx")
    assert onnx_info["kind"] == kind and onnx_info["format"] == "onnx"


def test_retrained_multiclass_candidate_is_judged_on_held_out_rows(tool_ctx: ToolContext) -> None:
    ws = build_workspace(tool_ctx.workspace, kind="multiclass", rows=800)
    call(align_data, tool_ctx, **ws.paths(), constraints=["macro F1 below 0.8"])
    retrained = call(retrain_candidate, tool_ctx, **ws.paths(), label_column=ws.label_column)
    assert retrained["kind"] == "multiclass" and retrained["candidate"]["f1_macro"] > 0.8 and retrained["meets_floor"]
    call(evaluate_model, tool_ctx, **ws.paths(), candidate_path=retrained["candidate_path"])
    candidate = _doc(tool_ctx)["candidate"]
    assert candidate["holdout"]["rows"] == 267 and "f1_macro" in candidate["production_on_holdout"]


TOOL_FOR = {"config_missing": (review_scoring_interface, lambda ws: {})}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_broken_workspaces_name_the_file_and_the_fix(tool_ctx: ToolContext, case: str) -> None:
    ws = build_workspace(tool_ctx.workspace, kind="binary", rows=400)
    where = break_workspace(ws, case)
    tool, args = TOOL_FOR.get(case, (evaluate_model, lambda w: w.paths()))
    if not where:  # the tools carry on: labels missing, or an instruction hidden in a data cell
        result = call(tool, tool_ctx, **args(ws))
        assert result["status"] in ("pass", "fail")
        if case == "prompt_injection":
            assert INJECTION not in json.dumps(result)
        else:
            assert not result["labelled"] and any("cannot be measured" in f["detail"] for f in result["findings"])
        return
    with pytest.raises(UnusableInput) as caught:
        call(tool, tool_ctx, **args(ws))
    assert caught.value.path == where, (case, caught.value)
    assert caught.value.fix and str(caught.value)


def test_bootstrap_resamples_compute_what_scikit_learn_computes() -> None:
    rng = np.random.default_rng(0)
    n = 400
    outcomes = [
        Outcome(kind="binary", truth=rng.integers(0, 2, n), pred=rng.integers(0, 2, n), score=rng.random(n),
                classes=(0, 1)),
        Outcome(kind="anomaly", truth=rng.integers(0, 2, n), pred=rng.integers(0, 2, n), score=rng.random(n)),
        Outcome(kind="multiclass", truth=rng.integers(-1, 3, n), pred=rng.integers(0, 3, n),
                proba=rng.dirichlet([1, 1, 1], n), classes=("a", "b", "c")),
        Outcome(kind="regression", truth=rng.normal(10, 3, n), pred=rng.normal(10, 3, n)),
    ]
    whole = np.arange(n)[None, :]
    names = ["precision", "recall", "f1", "accuracy", "balanced_accuracy", "specificity", "false_positive_rate",
             "false_negative_rate", "alert_rate", "error_rate", "log_loss", "roc_auc", "mae", "mse", "rmse", "r2",
             "mape", "f1_macro", "precision_weighted", "recall_micro"]
    checked = 0
    for o in outcomes:
        for name in names:
            if supports(o.kind, name):
                expected, got = metric(name, o), float(_values(name, o, whole)[0])
                assert math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12), (o.kind, name, expected, got)
                checked += 1
    assert checked > 40
