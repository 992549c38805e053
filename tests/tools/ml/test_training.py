"""The generated training pipeline: data pinned by sha256, the production estimator cloned with its seed; run in the
sandbox it retrains the very candidate the in-runner retraining makes (byte for byte), registers it with its
metrics, and its generated test re-runs it and finds the same metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from orchestrator.errors import ToolError
from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.demo import DemoInfo
from tools.ml.model import file_sha256
from tools.ml.remediation import retrain_candidate
from tools.ml.training import TRAINING_CONFIG, generate_training_pipeline, run_training_pipeline

CANDIDATE = "models/anomaly-detector-candidate"


def test_the_pipeline_retrains_the_candidate_reproducibly_and_registers_it(tool_ctx: ToolContext,
                                                                           demo: DemoInfo) -> None:
    ws = tool_ctx.workspace
    call(align_data, tool_ctx, **PATHS, constraints=["alert on precision drop >5%"])
    retrained = call(retrain_candidate, tool_ctx, **PATHS, label_column="is_anomaly")
    by_runner = file_sha256(ws / CANDIDATE / "model.joblib")
    (ws / CANDIDATE / "model.joblib").unlink()

    generated = call(generate_training_pipeline, tool_ctx, **PATHS, label_column="is_anomaly")
    config = yaml.safe_load((ws / TRAINING_CONFIG).read_text())
    assert config["seed"] == 7 and config["kind"] == "anomaly" and config["features"] == demo.features
    assert config["current"]["sha256"] == file_sha256(ws / "data/current.csv") == generated["pinned"]["current"]["sha256"]
    assert config["estimator"]["class"].endswith("IsolationForest") and config["estimator"]["params"]["random_state"] == 7

    result = call(run_training_pipeline, tool_ctx)
    assert file_sha256(ws / CANDIDATE / "model.joblib") == by_runner == result["pipeline"]["model_sha256"]
    assert result["pipeline"]["agrees_with_host"] and result["pipeline"]["exit_code"] == 0
    for name in ("precision", "recall"):  # the same figures as the in-runner retraining, computed on the host
        assert result["candidate"][name] == retrained["candidate"][name]
        assert result["production"][name] == retrained["production"][name]
    assert result["meets_floor"] and result["holdout_rows"] == retrained["holdout_rows"]
    entry = json.loads((ws / result["pipeline"]["registry_entry"]).read_text())
    assert entry["stage"] == "candidate" and entry["training"]["metrics"] == result["pipeline"]["metrics"]
    index = json.loads((ws / "registry/index.json").read_text())
    assert index["models"]["anomaly-detector"]["1.0.0-candidate"]["sha256"] == by_runner
    assert json.loads((ws / "reports/remediation.json").read_text())["candidate_path"] == CANDIDATE

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_training.py"],
                           cwd=ws, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0 and "2 passed" in tests.stdout, tests.stdout[-2000:]

    # A data file that is not the pinned version is refused, naming it; nothing is retrained from it.
    with (ws / "data/current.csv").open("a") as handle:
        handle.write("\n")
    with pytest.raises(ToolError, match="not the pinned version"):
        run_training_pipeline.invoke({"ctx": tool_ctx})
