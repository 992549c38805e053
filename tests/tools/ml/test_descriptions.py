"""A model is described once per mission and content: a mission's tools ask about the same model many times,
and each sandboxed description costs a sandbox start and the imports of its libraries.

Each sandboxed run of the model runner is counted from its debug log line (``model runner describe: ...``).
"""

from __future__ import annotations

import dataclasses
import logging
import sys

import joblib
import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from tools.context import ToolContext
from tools.ml import sandboxed
from tools.ml.demo import DemoInfo

MODEL_DIR = "models/anomaly-detector"


def _runs(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.name == "tools.ml.sandboxed" and "model runner describe" in r.getMessage())


@pytest.fixture
def counted(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="tools.ml.sandboxed")
    return caplog


def test_the_same_model_is_described_once_per_mission(tool_ctx: ToolContext, demo: DemoInfo,
                                                      counted: pytest.LogCaptureFixture) -> None:
    first = sandboxed.describe(tool_ctx, MODEL_DIR)
    again = sandboxed.describe(tool_ctx, MODEL_DIR)
    assert _runs(counted) == 1
    assert again == first and first.kind == "anomaly" and first.features
    again.features.append("changed by a caller")  # what a caller does to its copy stays its own
    assert sandboxed.describe(tool_ctx, MODEL_DIR).features == first.features

    other_mission = dataclasses.replace(tool_ctx, mission_id=f"{tool_ctx.mission_id}-other")
    assert sandboxed.describe(other_mission, MODEL_DIR) == first
    assert _runs(counted) == 2


def test_new_bytes_or_metadata_are_described_again(tool_ctx: ToolContext, demo: DemoInfo,
                                                   counted: pytest.LogCaptureFixture) -> None:
    before = sandboxed.describe(tool_ctx, MODEL_DIR)
    rng = np.random.default_rng(3)
    refit = IsolationForest(n_estimators=7, random_state=5).fit(rng.normal(size=(50, len(before.features))))
    joblib.dump(refit, tool_ctx.workspace / MODEL_DIR / "model.joblib")
    after = sandboxed.describe(tool_ctx, MODEL_DIR)
    assert _runs(counted) == 2
    assert after.description["params"]["n_estimators"] == 7 != before.description["params"]["n_estimators"]

    meta = tool_ctx.workspace / MODEL_DIR / "model.yaml"
    meta.write_text(meta.read_text() + "\nowner: another team\n")
    sandboxed.describe(tool_ctx, MODEL_DIR)
    assert _runs(counted) == 3


def test_a_model_loaded_through_workspace_code_is_described_each_time(tool_ctx: ToolContext, demo: DemoInfo,
                                                                      counted: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Its description depends on that code, which the mission may change between two calls."""
    ws = tool_ctx.workspace
    (ws / "house_models.py").write_text(
        "from sklearn.ensemble import IsolationForest\n\n"
        "class HouseForest(IsolationForest):\n"
        "    pass\n")
    monkeypatch.syspath_prepend(str(ws))
    monkeypatch.delitem(sys.modules, "house_models", raising=False)
    from house_models import HouseForest  # type: ignore[import-not-found]

    features = sandboxed.describe(tool_ctx, MODEL_DIR).features
    rng = np.random.default_rng(4)
    joblib.dump(HouseForest(n_estimators=5, random_state=1).fit(rng.normal(size=(40, len(features)))),
                ws / MODEL_DIR / "model.joblib")
    monkeypatch.delitem(sys.modules, "house_models")
    first = sandboxed.describe(tool_ctx, MODEL_DIR)
    assert first.estimator == "HouseForest"
    (ws / "house_models.py").write_text((ws / "house_models.py").read_text() + "\nVERSION = 2\n")
    assert sandboxed.describe(tool_ctx, MODEL_DIR).estimator == "HouseForest"
    assert _runs(counted) == 3  # the demo model once, the workspace-code model twice


def test_a_model_that_fails_to_load_is_asked_again(tool_ctx: ToolContext, demo: DemoInfo,
                                                   counted: pytest.LogCaptureFixture) -> None:
    from orchestrator.errors import UnusableInput

    model = tool_ctx.workspace / MODEL_DIR / "model.joblib"
    good = model.read_bytes()
    model.write_bytes(b"not a pickle")
    for _ in range(2):
        with pytest.raises(UnusableInput, match="cannot be loaded"):
            sandboxed.describe(tool_ctx, MODEL_DIR)
    model.write_bytes(good)
    assert sandboxed.describe(tool_ctx, MODEL_DIR).kind == "anomaly"
    assert _runs(counted) == 3
