"""Bad workspaces give clear findings, not crashes."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.data import inspect_model, profile_dataset
from tools.ml.demo import DemoInfo
from tools.ml.evaluation import evaluate_model
from tools.ml.pipeline import generate_batch_pipeline


def _missing_model(ws):
    for f in (ws / "models/anomaly-detector").iterdir():
        f.unlink()
    (ws / "models/anomaly-detector").rmdir()


def _corrupt_model(ws):
    (ws / "models/anomaly-detector/model.joblib").write_bytes(b"\x80\x04not a pickle at all")


def _wrong_columns(ws):
    frame = pd.read_csv(ws / "data/current.csv")
    frame.rename(columns={c: f"x{i}" for i, c in enumerate(frame.columns[1:6])}).to_csv(ws / "data/current.csv", index=False)


def _empty_data(ws):
    (ws / "data/current.csv").write_text("")


CASES = {
    "missing model": (_missing_model, "model unusable", "does not exist"),
    "corrupt model": (_corrupt_model, "model unusable", "cannot be loaded"),
    "wrong columns": (_wrong_columns, "current data has wrong columns", "lacks model features"),
    "empty data": (_empty_data, "current data unusable", "empty"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_workspace_gives_findings(tool_ctx: ToolContext, demo: DemoInfo, case: str) -> None:
    breaks, title, words = CASES[case]
    breaks(tool_ctx.workspace)
    aligned = call(align_data, tool_ctx, **PATHS)
    evaluated = call(evaluate_model, tool_ctx, **PATHS)
    for result in (aligned, evaluated):
        assert result["status"] == "blocked"
        assert any(f["title"] == title and words in f["detail"] for f in result["findings"]), result["findings"]
    assert tool_ctx.signals == []


def test_read_only_tools_report_errors_as_results(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _corrupt_model(tool_ctx.workspace)
    _empty_data(tool_ctx.workspace)
    assert "cannot be loaded" in call(inspect_model, tool_ctx, path="models/anomaly-detector")["error"]
    assert "empty" in call(profile_dataset, tool_ctx, path="data/current.csv")["error"]


def test_pipeline_generation_on_missing_model_is_blocked(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _missing_model(tool_ctx.workspace)
    result = call(generate_batch_pipeline, tool_ctx)
    assert result["status"] == "blocked"
    assert [f["title"] for f in result["findings"]] == ["model unusable"]
