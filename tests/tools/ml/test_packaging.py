"""Packaging: ONNX parity, hadolint-clean Dockerfile, registry entry and reproducibility manifest."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from tests.support.records import recorded_artifacts
from tests.support.workspaces import build_workspace
from tests.tools.ml.support import PATHS, call, new_run
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.demo import DemoInfo
from tools.ml.evaluation import evaluate_model
from tools.ml.model_registry import register_model, write_manifest
from tools.ml.packaging import build_container, export_onnx_model, hadolint_binary
from tools.ml.pipeline import generate_batch_pipeline


def test_onnx_export_matches_the_original(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    parity = call(export_onnx_model, tool_ctx, model_path="models/anomaly-detector", data_path="data/current.csv")
    assert parity["status"] == "ok"
    assert parity["labels_identical"] and parity["max_abs_score_diff"] <= 1e-5
    assert (tool_ctx.workspace / "models/anomaly-detector/model.onnx").is_file()


def _refit(ws_path, model_dir: str, reference: str, label: str, features: list[str], estimator, *,
           missing: bool = False) -> None:
    frame = pd.read_csv(ws_path / reference)
    if missing:  # the trees route missing values; the ONNX form must route them the same way
        frame.loc[frame.index[::9], features[0]] = np.nan
    joblib.dump(estimator.fit(frame[features], frame[label]), ws_path / model_dir / "model.joblib")
    frame.to_csv(ws_path / reference, index=False)


def test_a_histogram_gradient_boosting_model_exports_with_parity(tool_ctx: ToolContext) -> None:
    """skl2onnx hands protobuf a bool for the trees' missing-value flag; the export casts it (it failed)."""
    ws = build_workspace(tool_ctx.workspace, kind="binary", metadata=False, rows=800)
    _refit(tool_ctx.workspace, ws.model_dir, ws.reference, ws.label_column, ws.features,
           HistGradientBoostingClassifier(max_iter=30, random_state=0), missing=True)
    parity = call(export_onnx_model, tool_ctx, model_path=ws.model_dir, data_path=ws.reference)
    assert parity["status"] == "ok" and parity["rows_compared"] == 800
    assert parity["labels_identical"] and parity["max_abs_score_diff"] <= parity["tolerance"]


@pytest.mark.parametrize("skip_image", [False, True], ids=["with-image", "no-image"])
def test_a_model_with_no_onnx_form_is_packaged_as_joblib(tool_ctx: ToolContext, skip_image: bool) -> None:
    """skl2onnx has no converter for a FunctionTransformer: no ONNX file, said in the report and the package
    summary; the image serves the joblib artifact. With no image either, nothing is packaged: the step fails."""
    ws = build_workspace(tool_ctx.workspace, kind="binary", metadata=False, rows=400)
    _refit(tool_ctx.workspace, ws.model_dir, ws.reference, ws.label_column, ws.features,
           make_pipeline(FunctionTransformer(np.tanh), LogisticRegression()))
    parity = call(export_onnx_model, tool_ctx, model_path=ws.model_dir, data_path=ws.reference)
    assert parity["status"] == "unsupported" and "FunctionTransformer" in parity["reason"]
    assert parity["onnx"] is None and not (tool_ctx.workspace / ws.model_dir / "model.onnx").exists()
    assert json.loads((tool_ctx.workspace / "reports/onnx-parity.json").read_text())["status"] == "unsupported"

    text = (f"Mission: Package the model in {ws.model_dir}/ for batch scoring"
            + (", and skip the Docker image." if skip_image else ".") + f"\nInputs: {ws.model_dir}/, {ws.config}.")
    packaged = new_run(tool_ctx, text).step("package")
    assert "ONNX export unsupported" in packaged.summary
    assert any(f.title == "no ONNX form" for f in packaged.findings)
    if skip_image:
        assert packaged.status == "failed" and "nothing packaged" in packaged.reason
    else:
        assert packaged.status == "completed", packaged.reason
        assert "hadolint exit code 0" in packaged.summary


def test_dockerfile_is_hadolint_clean_and_non_root(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    call(generate_batch_pipeline, tool_ctx)
    assert hadolint_binary() is not None
    result = call(build_container, tool_ctx)
    assert result["status"] == "ok", result
    assert result["hadolint"]["exit_code"] == 0 and result["hadolint"]["issues"] == []
    text = (tool_ctx.workspace / "Dockerfile").read_text()
    assert "USER 10001" in text and ":latest" not in text
    assert all("==" in line for line in (tool_ctx.workspace / "requirements.txt").read_text().split())


def test_registry_entry_and_manifest(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    call(align_data, tool_ctx, **PATHS, constraints=["alert on precision drop >5%"])
    call(evaluate_model, tool_ctx, **PATHS)
    call(export_onnx_model, tool_ctx, model_path="models/anomaly-detector", data_path="data/reference.csv")
    entry = call(register_model, tool_ctx, model_path="models/anomaly-detector")
    doc = json.loads((tool_ctx.workspace / entry["entry"]).read_text())
    assert doc["name"] == "anomaly-detector" and doc["version"] == "1.0.0"
    assert {a["path"].rsplit("/", 1)[1] for a in doc["artifacts"]} == {"model.joblib", "model.onnx", "model.yaml"}
    assert doc["datasets"]["reference"]["sha256"] and doc["metrics"]["evaluation"]["current"]["precision"] > 0
    assert doc["onnx_parity"]["status"] == "ok" and doc["code_version"]["code_sha256"]
    index = json.loads((tool_ctx.workspace / "registry/index.json").read_text())
    assert index["models"]["anomaly-detector"]["1.0.0"]["entry"] == entry["entry"]
    manifest = call(write_manifest, tool_ctx, model_path="models/anomaly-detector")
    full = json.loads((tool_ctx.workspace / manifest["path"]).read_text())
    assert full["packages"]["scikit-learn"] and full["seeds"]["training.random_state"] == 7
    assert "data/current.csv" in full["hashes"]
    kinds = {a["path"]: a["kind"] for a in recorded_artifacts(tool_ctx)}
    assert kinds[entry["entry"]] == "registry" and kinds[manifest["path"]] == "manifest"
