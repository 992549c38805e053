"""The feature store: a Feast repository for the model's features, applied and materialised in the sandbox, read back
equal to the files, and the scoring pipeline reading its features from it gives the same scores as from the files."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import yaml

from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml import feature_store
from tools.ml.alignment import align_data
from tools.ml.demo import DemoInfo
from tools.ml.feature_store import FEATURE_STORE_REPORT, build_feature_store, feast_python, feature_store_check
from tools.ml.pipeline import generate_batch_pipeline


def _prepare(ctx: ToolContext) -> None:
    call(align_data, ctx, **PATHS, constraints=["alert on precision drop >5%"])
    call(generate_batch_pipeline, ctx)


def test_the_store_is_applied_materialised_and_serves_the_pipeline(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    python, where = feast_python()
    if python is None:
        pytest.skip(where)
    ws = tool_ctx.workspace
    _prepare(tool_ctx)
    result = call(build_feature_store, tool_ctx)
    assert result["status"] == "ok", result
    assert (result["entity"], result["feature_view"], result["features"]) == ("record_id", "model_features",
                                                                              len(demo.features))
    assert result["materialised_rows"] == demo.current_rows and (ws / "feature_repo/data/online.db").is_file()
    assert result["read_back"] == {"rows": 200, "matched": 200, "missing": 0, "max_abs_diff": 0.0,
                                   "mismatched_columns": []}
    assert result["pipeline_dry_run"]["exit_code"] == 0 and result["pipeline_dry_run"]["feature_source"] == "feast"
    config = yaml.safe_load((ws / "pipelines/batch-scoring.yaml").read_text())
    assert config["features"] == {"source": "file", "repo": "feature_repo", "feature_view": "model_features",
                                  "entity_column": "record_id"}  # an option; the files stay the default source
    name, detail, ok = feature_store_check(ws)
    assert ok and f"{demo.current_rows} rows materialised into SQLite" in detail

    # A whole run reading its features from the store scores exactly as a run reading them from the file.
    scores = {}
    for source in ("file", "feast"):
        run = subprocess.run([python, "-m", "pipelines.batch_scoring", "--feature-source", source],
                             cwd=ws, capture_output=True, text=True, timeout=300, env={"FEAST_USAGE": "False",
                                                                                        "PATH": "/usr/bin:/bin"})
        assert run.returncode == 0, run.stderr[-2000:]
        assert json.loads(run.stdout.strip().splitlines()[-1])["feature_source"] == source
        scores[source] = pd.read_csv(ws / "outputs/scores.csv")
    pd.testing.assert_frame_equal(scores["file"], scores["feast"])


def test_without_feast_the_repository_is_written_and_the_step_says_why(tool_ctx: ToolContext, demo: DemoInfo,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The installation is the boundary: a host without the extra.
    monkeypatch.setattr(feature_store, "feast_python", lambda: (None, "Feast is not installed: (the reason)"))
    _prepare(tool_ctx)
    result = call(build_feature_store, tool_ctx)
    assert result["status"] == "skipped" and result["reason"] == "Feast is not installed: (the reason)"
    assert (tool_ctx.workspace / "feature_repo/features.py").is_file()
    assert not (tool_ctx.workspace / "feature_repo/data/online.db").exists()
    assert json.loads((tool_ctx.workspace / FEATURE_STORE_REPORT).read_text())["status"] == "skipped"
    name, detail, ok = feature_store_check(tool_ctx.workspace)
    assert detail == "skipped: Feast is not installed: (the reason); the repository `feature_repo` is written but not applied"
