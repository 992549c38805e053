"""Packaging: ONNX parity, hadolint-clean Dockerfile, registry entry and reproducibility manifest."""

from __future__ import annotations

import json

from tests.support.records import recorded_artifacts
from tests.tools.ml.support import PATHS, call
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
