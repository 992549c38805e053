"""A workspace with no pipeline config and no ``model.yaml``: its model and data are found from the names the
mission gives (``models/``, ``train``/``holdout``, ``history``/``latest`` as well as ``reference``/``current``), its
label is the one column the model does not take as input whose values fit the model (when that is ambiguous,
nothing is guessed), and its scoring interface is reviewed before the implement step writes a config."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from orchestrator.mission import parse_mission
from tests.support.workspaces import GeneratedWorkspace, build_workspace
from tests.tools.ml.support import call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.data import locate_inputs
from tools.ml.errors import DataError, ModelError
from tools.ml.evaluation import evaluate_model
from tools.ml.model import locate_model
from tools.ml.serving import review_scoring_interface


def _unconfigured(ws: GeneratedWorkspace, *, label: str, files: tuple[str, str]) -> tuple[str, str]:
    """Drop the config, rename the label column to ``label`` and the data files to ``files`` (under data/)."""
    (ws.path / ws.config).unlink()
    paths = []
    for old, name in zip((ws.reference, ws.current), files, strict=True):
        frame = pd.read_csv(ws.path / old).rename(columns={ws.label_column: label})
        (ws.path / old).unlink()
        frame.to_csv(ws.path / "data" / name, index=False)
        paths.append(f"data/{name}")
    return paths[0], paths[1]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_holdout_data_and_an_unnamed_label_are_found(tool_ctx: ToolContext, kind: str) -> None:
    """A ``sex`` column beside the features (F/M) is not taken for the label: its values fit no model."""
    ws = build_workspace(tool_ctx.workspace, kind=kind, metadata=False, rows=600,
                         sensitive=None if kind == "regression" else "sex")
    train, holdout = _unconfigured(ws, label="outcome", files=("train.csv", "holdout.csv"))
    found = call(locate_inputs, tool_ctx, inputs=[f"{ws.model_dir}/model.joblib", train, holdout])
    assert (found["reference_path"], found["current_path"]) == (train, holdout)
    assert found["label_column"] is None  # nothing names it yet: the alignment infers it from the model

    aligned = call(align_data, tool_ctx, model_path=ws.model_dir, reference_path=train, current_path=holdout)
    assert aligned["label_column"] == "outcome"
    assert any(f["title"] == "label column inferred" for f in aligned["findings"])
    # Once aligned, the layout reports the label too, and the evaluation computes labelled metrics with it.
    assert call(locate_inputs, tool_ctx, inputs=[train, holdout])["label_column"] == "outcome"
    evaluated = call(evaluate_model, tool_ctx, model_path=ws.model_dir, reference_path=train, current_path=holdout)
    assert evaluated["labelled"] is True


def test_the_files_the_mission_names_win_over_other_data(tool_ctx: ToolContext) -> None:
    """Two candidate 'current' files in data/: the one the mission names is scored, the other left alone."""
    ws = build_workspace(tool_ctx.workspace, kind="binary", metadata=False, rows=400)
    train, holdout = _unconfigured(ws, label="label", files=("train.csv", "holdout.csv"))
    (tool_ctx.workspace / "data/scored-batch.csv").write_text((tool_ctx.workspace / holdout).read_text())
    assert call(locate_inputs, tool_ctx, inputs=[])["current_path"] == "data/scored-batch.csv"
    found = call(locate_inputs, tool_ctx, inputs=[train, f"./{holdout}", "../outside.csv"])
    assert (found["reference_path"], found["current_path"]) == (train, holdout)


@pytest.mark.parametrize("case", ["two-fitting-columns", "values-outside-the-classes", "label-like-id"])
def test_an_ambiguous_label_is_not_guessed(tool_ctx: ToolContext, case: str) -> None:
    ws = build_workspace(tool_ctx.workspace, kind="binary", metadata=False, rows=400, sensitive="sex")
    train, holdout = _unconfigured(ws, label="outcome", files=("train.csv", "holdout.csv"))
    for path in (train, holdout):
        frame = pd.read_csv(tool_ctx.workspace / path)
        if case == "two-fitting-columns":
            frame["defaulted_before"] = 1 - frame["outcome"]
        elif case == "values-outside-the-classes":
            frame["outcome"] = frame["outcome"] + 5
        elif case == "label-like-id":
            frame = frame.rename(columns={"outcome": "customer_id"})
        frame.to_csv(tool_ctx.workspace / path, index=False)
    aligned = call(align_data, tool_ctx, model_path=ws.model_dir, reference_path=train, current_path=holdout)
    assert aligned["label_column"] is None
    assert not any(f["title"] == "label column inferred" for f in aligned["findings"])


def test_the_models_folder_and_files_named_by_what_they_hold(tool_ctx: ToolContext) -> None:
    """'the forecaster (models/) trained on data/history.csv; score data/latest.csv': the one model folder inside
    models/, history as the reference, latest as the current data."""
    ws = build_workspace(tool_ctx.workspace, kind="regression", metadata=False, rows=400)
    history, latest = _unconfigured(ws, label="demand", files=("history.csv", "latest.csv"))
    found = call(locate_inputs, tool_ctx, inputs=["models/", history, latest])
    assert (found["model_path"], found["reference_path"], found["current_path"]) == (ws.model_dir, history, latest)
    aligned = call(align_data, tool_ctx, model_path="models/", reference_path=history, current_path=latest)
    assert aligned["label_column"] == "demand" and aligned["model"]["kind"] == "regression"
    # Two model folders: which one is meant is not guessed.
    other = tool_ctx.workspace / "models" / "other-model"
    other.mkdir()
    (other / "model.joblib").write_bytes((tool_ctx.workspace / ws.model_dir / "model.joblib").read_bytes())
    with pytest.raises(ModelError, match="several model folders .other-model, regression-model."):
        locate_model(tool_ctx.workspace, "models/")


def test_the_scoring_interface_is_reviewed_before_any_config_exists(tool_ctx: ToolContext) -> None:
    """Design comes before implement: with no pipeline config, the review reads the one implement will write from
    the layout, says so, and writes no config itself."""
    ws = build_workspace(tool_ctx.workspace, kind="binary", metadata=False, rows=400)
    _unconfigured(ws, label="label", files=("train.csv", "holdout.csv"))
    ctx = replace(tool_ctx, mission=parse_mission(f"Score the model in {ws.model_dir}/ nightly"))
    reviewed = call(review_scoring_interface, ctx)
    assert reviewed["status"] == "ok"
    [note] = [p for p in reviewed["problems"] if p["title"] == "pipeline config"]
    assert note["severity"] == "low" and "data/holdout.csv" in note["detail"] and ws.model_dir in note["detail"]
    assert not (tool_ctx.workspace / ws.config).exists()
    assert "pipeline config" in (tool_ctx.workspace / "docs/scoring-interface-review.md").read_text()
    # A config the mission names, missing, is a broken input: the review stops there, naming it.
    named = replace(tool_ctx, mission=parse_mission(f"Mission: Score it.\nInputs: {ws.model_dir}/, {ws.config}"))
    with pytest.raises(DataError) as caught:
        call(review_scoring_interface, named)
    assert caught.value.path == ws.config
