"""Workspace models are only ever loaded in the sandbox: a pickle payload runs nothing on the host.

The payload is a real ``__reduce__`` exploit: unpickling it calls ``exec`` on code that reads the model
provider's key from the environment and writes it to a marker file outside the workspace and into the
workspace. A control loads it in this process to show that it works; then every model-touching tool gets
it, placed as the model file or written from inside a sandboxed ``bash`` call.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ToolError, UnusableInput
from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.capacity import estimate_capacity
from tools.ml.data import inspect_model
from tools.ml.demo import DemoInfo
from tools.ml.evaluation import evaluate_model
from tools.ml.model_registry import register_model, write_manifest
from tools.ml.packaging import export_onnx_model
from tools.ml.pipeline import generate_batch_pipeline
from tools.ml.remediation import retrain_candidate
from tools.ml.shadow import compare_shadow
from tools.ml.training import generate_training_pipeline
from tools.ml.serving import generate_inference_service
from tools.shell import bash

KEY = "sk-test-provider-key-0123456789"
MODEL_DIR = "models/anomaly-detector"


class _Exploit:
    """Unpickles to ``fn(arg)``: what a hostile ``model.joblib`` does."""

    def __init__(self, fn: Any, arg: str) -> None:
        self.fn, self.arg = fn, arg

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return self.fn, (self.arg,)


def _payload_code(marker: Path, workspace: Path) -> str:
    return (
        "import os, pathlib\n"
        "key = os.environ.get('ORCH_TEST_PROVIDER_KEY', 'no key')\n"
        f"for target in ({str(marker)!r}, {str(workspace / 'leak.txt')!r}, '/workspace/leak.txt'):\n"
        "    try:\n"
        "        pathlib.Path(target).parent.mkdir(parents=True, exist_ok=True)\n"
        "        pathlib.Path(target).write_text('payload ran with ' + key)\n"
        "    except OSError:\n"
        "        pass\n"
    )


@pytest.fixture
def hostile(tool_ctx: ToolContext, demo: DemoInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo model replaced by the payload; returns the marker path (outside the workspace)."""
    monkeypatch.setenv("ORCH_TEST_PROVIDER_KEY", KEY)
    marker = tmp_path / "outside" / "marker.txt"
    code = _payload_code(marker, tool_ctx.workspace)
    blob = pickle.dumps(_Exploit(exec, code))
    pickle.loads(blob)  # the control: loaded here, it runs with the key and writes both files
    assert marker.read_text() == f"payload ran with {KEY}"
    assert (tool_ctx.workspace / "leak.txt").read_text() == f"payload ran with {KEY}"
    marker.unlink()
    (tool_ctx.workspace / "leak.txt").unlink()
    (tool_ctx.workspace / MODEL_DIR / "model.joblib").write_bytes(blob)
    return marker


def _nothing_escaped(marker: Path, ctx: ToolContext, *texts: str) -> None:
    assert not marker.exists(), "the payload wrote outside the workspace"
    assert not (ctx.workspace / "leak.txt").exists(), "the payload wrote into the (read-only) workspace"
    assert not any(KEY in text for text in texts)


CALLS = {
    "inspect_model": (inspect_model, {"path": MODEL_DIR}),
    "align_data": (align_data, PATHS),
    "evaluate_model": (evaluate_model, PATHS),
    "export_onnx_model": (export_onnx_model, {"model_path": MODEL_DIR, "data_path": "data/reference.csv"}),
    "register_model": (register_model, {"model_path": MODEL_DIR}),
    "write_manifest": (write_manifest, {"model_path": MODEL_DIR}),
    "generate_batch_pipeline": (generate_batch_pipeline, {}),
    "generate_inference_service": (generate_inference_service, {"model_path": MODEL_DIR,
                                                                "sample_data_path": "data/reference.csv"}),
    "estimate_capacity": (estimate_capacity, {"benchmark_rows": 1000}),
    "retrain_candidate": (retrain_candidate, {**PATHS, "label_column": "is_anomaly"}),
    "generate_training_pipeline": (generate_training_pipeline, {**PATHS, "label_column": "is_anomaly"}),
    "compare_shadow": (compare_shadow, {"model_path": MODEL_DIR, "candidate_path": MODEL_DIR,
                                        "current_path": "data/current.csv"}),
}


@pytest.mark.parametrize("name", list(CALLS), ids=list(CALLS))
def test_payload_model_runs_nothing_on_the_host(tool_ctx: ToolContext, hostile: Path, name: str) -> None:
    tool, args = CALLS[name]
    with pytest.raises(UnusableInput) as caught:
        call(tool, tool_ctx, **args)
    # exec() returns None: in the sandbox the payload ran, found no key, could not write, and is no model.
    assert caught.value.path == f"{MODEL_DIR}/model.joblib" and "not a model" in str(caught.value)
    _nothing_escaped(hostile, tool_ctx, str(caught.value), caught.value.fix)


def test_payload_that_returns_a_working_model_is_contained_and_scored(tool_ctx: ToolContext, demo: DemoInfo,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst case: the model works (so every tool succeeds) and its payload ran at each load."""
    monkeypatch.setenv("ORCH_TEST_PROVIDER_KEY", KEY)
    marker = tmp_path / "outside" / "marker.txt"
    ws = tool_ctx.workspace
    (ws / MODEL_DIR / "model.joblib").rename(ws / MODEL_DIR / "real.joblib")
    expression = (f"(exec({_payload_code(marker, ws)!r}), "
                  f"__import__('joblib').load('/workspace/{MODEL_DIR}/real.joblib'))[1]")
    (ws / MODEL_DIR / "model.joblib").write_bytes(pickle.dumps(_Exploit(eval, expression)))
    aligned = call(align_data, tool_ctx, **PATHS, constraints=["alert on precision drop >5%"])
    evaluated = call(evaluate_model, tool_ctx, **PATHS)
    assert aligned["baseline"]["precision"] > 0 and evaluated["status"] == "fail"
    assert sorted(evaluated["drifted"]) == sorted(demo.injected_shift)
    _nothing_escaped(marker, tool_ctx, json.dumps(aligned), json.dumps(evaluated),
                     *(p.read_text(errors="ignore") for p in ws.rglob("*") if p.is_file()))


def test_payload_written_from_the_sandboxed_shell_then_inspected(tool_ctx: ToolContext, demo: DemoInfo,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_TEST_PROVIDER_KEY", KEY)
    marker = tmp_path / "outside" / "marker.txt"
    script = (
        "import pickle\n"
        "class E:\n"
        "    def __reduce__(self):\n"
        f"        return exec, ({_payload_code(marker, tool_ctx.workspace)!r},)\n"
        f"open('{MODEL_DIR}/model.joblib', 'wb').write(pickle.dumps(E()))\n"
    )
    (tool_ctx.workspace / "make_payload.py").write_text(script)
    shell = call(bash, tool_ctx, command="python make_payload.py && ls -l " + MODEL_DIR)
    assert shell["exit_code"] == 0 and shell["sandboxed"], shell
    with pytest.raises(UnusableInput, match="not a model") as caught:
        call(inspect_model, tool_ctx, path=MODEL_DIR)
    _nothing_escaped(marker, tool_ctx, str(caught.value))


def test_without_bubblewrap_models_are_refused(tool_ctx: ToolContext, demo: DemoInfo,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tools.sandbox.bwrap_path", lambda: None)
    with pytest.raises(ToolError, match="bubblewrap") as caught:
        call(inspect_model, tool_ctx, path=MODEL_DIR)
    assert not isinstance(caught.value, UnusableInput)  # the operator's to fix, not the user's
    tool_ctx.settings.allow_unsandboxed_shell = True  # the operator's explicit opt-in
    assert call(inspect_model, tool_ctx, path=MODEL_DIR)["kind"] == "anomaly"


def test_not_an_estimator_is_unusable_input(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    import joblib

    joblib.dump({"weights": [1, 2, 3]}, tool_ctx.workspace / MODEL_DIR / "model.joblib")
    with pytest.raises(UnusableInput) as caught:
        call(inspect_model, tool_ctx, path=MODEL_DIR)
    assert "holds a dict, which is not a model" in str(caught.value) and "fitted estimator" in caught.value.fix


def test_payload_uploaded_as_a_workspace_archive_runs_nothing_on_the_server(
        tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's first attack: a submitter uploads a workspace whose model is the payload; the server runs
    the mission (built-in planner) and stops at alignment, with the payload contained in the sandbox."""
    import io
    import tarfile
    import time

    from fastapi.testclient import TestClient

    from orchestrator.api.app import create_app
    from orchestrator.api.keys import create_key
    from orchestrator.config import Settings
    from orchestrator.db import session_scope
    from tests.support.missions import MISSION_TEXT
    from tools.ml.demo import build_demo_workspace

    monkeypatch.setenv("ORCH_TEST_PROVIDER_KEY", KEY)
    marker = tmp_path / "outside" / "marker.txt"
    source = tmp_path / "upload"
    build_demo_workspace(source, reference_rows=800, current_rows=800)
    (source / MODEL_DIR / "model.joblib").write_bytes(pickle.dumps(_Exploit(exec, _payload_code(marker, source))))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=".")
    settings = Settings(home=tmp_path / "home", database_url=sqlite_url, workspace_roots=[tmp_path / "roots"],
                        _env_file=None)
    with session_scope(settings.resolved_database_url) as session:
        key = create_key(session, role="submitter", name="attacker")[1]
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        created = client.post("/api/v1/missions/upload", data={"text": MISSION_TEXT}, headers=headers,
                              files={"archive": ("ws.tar.gz", buffer.getvalue(), "application/gzip")})
        assert created.status_code == 201, created.text
        mission_id = created.json()["id"]
        deadline = time.monotonic() + 240
        while (view := client.get(f"/api/v1/missions/{mission_id}", headers=headers).json())["status"] in (
                "queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
    assert view["status"] in ("waiting_approval", "blocked", "failed"), view["status"]
    text = json.dumps(view)
    assert "model.joblib" in text and "not a model" in text  # the reason names the file
    assert not marker.exists() and KEY not in text
    assert not (Path(view["workspace"]) / "leak.txt").exists()
