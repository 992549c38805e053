"""The generated batch-scoring package: self-contained, dry run exits 0, its own tests pass."""

from __future__ import annotations

import ast
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.support.records import recorded_artifacts
from tests.support.workspaces import build_workspace
from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.demo import DemoInfo
from tools.ml.pipeline import generate_batch_pipeline

_ALLOWED = {"__future__", "argparse", "collections", "dataclasses", "hashlib", "json", "logging", "math", "os",
            "pathlib", "resource", "sys", "tempfile", "threading", "time", "typing", "numpy", "pandas", "yaml",
            "pydantic", "joblib", "onnxruntime", "sklearn", "pipelines", "pytest", "pyarrow",
            "html", "scipy", "feast"}


def _generate(ctx: ToolContext) -> dict:
    call(align_data, ctx, **PATHS, constraints=["alert on precision drop >5%"])
    return call(generate_batch_pipeline, ctx)


def test_generated_package_runs_and_its_tests_pass(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    result = _generate(tool_ctx)
    assert result["status"] == "ok"
    ws = tool_ctx.workspace
    dry = subprocess.run([sys.executable, "-m", "pipelines.batch_scoring", "--dry-run"], cwd=ws, capture_output=True,
                         text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert not (ws / "outputs/scores.csv").exists()  # a dry run writes nothing
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=ws,
                           capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "8 passed" in tests.stdout


def test_full_run_raises_the_alerts_and_writes_metrics(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _generate(tool_ctx)
    ws = tool_ctx.workspace
    run = subprocess.run([sys.executable, "-m", "pipelines.batch_scoring"], cwd=ws, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    alerts = {a["name"]: a for a in yaml.safe_load((ws / "outputs/alerts.json").read_text())["alerts"]}
    assert sorted(alerts["feature_drift"]["features"]) == sorted(demo.injected_shift)
    assert alerts["precision_drop"]["fired"]
    assert "alert fired: precision_drop" in run.stderr  # the monitoring hook's structured log line
    assert "batch_scoring_alert_fired{alert=\"precision_drop\"} 1" in (ws / "outputs/metrics.prom").read_text()
    assert sum(1 for _ in (ws / "outputs/scores.csv").open()) == demo.current_rows + 1


def test_generated_code_is_self_contained_and_recorded(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    result = _generate(tool_ctx)
    for rel in result["files"]:
        if rel.endswith(".py"):
            tree = ast.parse((tool_ctx.workspace / rel).read_text())
            roots = {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            roots |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            assert roots <= _ALLOWED, (rel, roots - _ALLOWED)
    recorded = {a["path"]: a for a in recorded_artifacts(tool_ctx)}
    assert recorded["pipelines/batch_scoring/scoring.py"]["kind"] == "pipeline"
    assert recorded["tests/test_batch_scoring.py"]["kind"] == "test"
    assert recorded["monitoring/alerts.yaml"]["kind"] == "config"
    config = yaml.safe_load((tool_ctx.workspace / "pipelines/batch-scoring.yaml").read_text())
    assert config["monitoring"]["rules"] == "monitoring/alerts.yaml"
    assert config["expected_rows_per_night"] > 0  # the user's settings are kept


@pytest.mark.parametrize(("kind", "data_format"), [("multiclass", "parquet"), ("regression", "csv")],
                         ids=["multiclass-parquet", "regression"])
def test_generated_package_scores_every_kind(tool_ctx: ToolContext, kind: str, data_format: str) -> None:
    if data_format == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (a project dependency to declare)")
    ws = build_workspace(tool_ctx.workspace, kind=kind, data_format=data_format, batches=2, rows=600)
    call(align_data, tool_ctx, **ws.paths())
    assert call(generate_batch_pipeline, tool_ctx)["status"] == "ok"
    run = subprocess.run([sys.executable, "-m", "pipelines.batch_scoring"], cwd=ws.path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    scores = pd.read_csv(ws.path / "outputs/scores.csv")
    assert len(scores) == 600 and "prediction" in scores.columns
    if kind == "multiclass":
        assert set(scores["prediction"]) <= {"low", "medium", "high"} and scores["score"].between(0, 1).all()
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=ws.path,
                           capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:]
