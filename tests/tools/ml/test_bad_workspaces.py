"""Bad workspaces give a clear UnusableInput naming the file at fault and the fix, never a crash or a JSON
"failed" that the executor would record as ok."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.errors import UnusableInput
from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.data import fingerprint_dataset, inspect_model, profile_dataset
from tools.ml.demo import DemoInfo
from tools.ml.evaluation import evaluate_model
from tools.ml.pipeline import generate_batch_pipeline

MODEL = "models/anomaly-detector/model.joblib"


def _missing_model(ws):
    for f in (ws / "models/anomaly-detector").iterdir():
        f.unlink()
    (ws / "models/anomaly-detector").rmdir()


def _corrupt_model(ws):
    (ws / MODEL).write_bytes(b"\x80\x04not a pickle at all")


def _wrong_columns(ws):
    frame = pd.read_csv(ws / "data/current.csv")
    frame.rename(columns={c: f"x{i}" for i, c in enumerate(frame.columns[1:6])}).to_csv(ws / "data/current.csv", index=False)


def _empty_data(ws):
    (ws / "data/current.csv").write_text("")


def _non_numeric(ws):
    frame = pd.read_csv(ws / "data/current.csv")
    frame["mean_radius"] = frame["mean_radius"].astype(object)
    frame.loc[3, "mean_radius"] = "twelve"
    frame.to_csv(ws / "data/current.csv", index=False)


CASES = {
    "missing model": (_missing_model, "models/anomaly-detector", "does not exist"),
    "corrupt model": (_corrupt_model, MODEL, "cannot be loaded"),
    "wrong columns": (_wrong_columns, "data/current.csv", "lacks model features"),
    "empty data": (_empty_data, "data/current.csv", "empty"),
    "non-numeric feature": (_non_numeric, "data/current.csv", "non-numeric"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_workspace_is_unusable_input_naming_the_file(tool_ctx: ToolContext, demo: DemoInfo, case: str) -> None:
    breaks, path, words = CASES[case]
    breaks(tool_ctx.workspace)
    for tool in (align_data, evaluate_model):
        with pytest.raises(UnusableInput) as caught:
            call(tool, tool_ctx, **PATHS)
        assert caught.value.path == path and words in str(caught.value), (tool.name, caught.value)
        assert caught.value.fix
    assert tool_ctx.signals == []
    assert not (tool_ctx.workspace / "reports/evaluation.json").exists()


def test_read_only_tools_raise_too(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _corrupt_model(tool_ctx.workspace)
    _empty_data(tool_ctx.workspace)
    with pytest.raises(UnusableInput, match="cannot be loaded"):
        call(inspect_model, tool_ctx, path="models/anomaly-detector")
    for tool in (profile_dataset, fingerprint_dataset):
        with pytest.raises(UnusableInput, match="empty") as caught:
            call(tool, tool_ctx, path="data/current.csv")
        assert caught.value.path == "data/current.csv"


def test_pipeline_generation_on_missing_model_is_unusable_input(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    _missing_model(tool_ctx.workspace)
    with pytest.raises(UnusableInput, match="does not exist"):
        call(generate_batch_pipeline, tool_ctx)
    assert not (tool_ctx.workspace / "pipelines/batch_scoring").exists()
