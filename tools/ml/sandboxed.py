"""Workspace models, used only through the sandbox: one JSON request to the model runner, one JSON answer.

The host never unpickles or opens a workspace model. Each tool call sends the runner
(:mod:`tools.ml.runner`, executed as ``python -I -c <source>`` under bubblewrap with the shell's limits, no
network, a scrubbed environment and the workspace mounted read-only) a small request — an operation,
workspace-relative paths, parameters — and gets figures back: predictions and scores as arrays, a
description of the model, timings, bytes to write. Sandbox start-up plus importing scikit-learn costs about
a second, so each tool asks for everything it needs in one request (e.g. the evaluation's reference,
current and candidate predictions together); metrics are computed here, on the host, from those arrays. A
model's description is asked once per content (:func:`describe`): a mission's tools describe the same model
many times.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import logging
import math
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import ToolError
from tools.context import ToolContext
from tools.ml.errors import DataError, ModelError, Unconvertible, check_workspace
from tools.ml.model import ModelInfo, ModelRef, file_sha256, locate_model, model_info
from tools.sandbox import run_sandboxed
from tools.workspace import resolve_in_workspace

__all__ = ["Scores", "Predictions", "ask", "describe", "predict", "decode", "scores_of", "RUNNER_SOURCE",
           "MAX_ANSWER_BYTES"]

logger = logging.getLogger(__name__)

RUNNER_SOURCE = Path(__file__).with_name("runner.py").read_text()
"""The runner's code, passed with ``-c``: the sandbox needs no view of this project's files."""
MAX_ANSWER_BYTES = 512 << 20
"""Largest answer accepted (predictions for a few million rows); beyond it the call fails, never truncates."""
_DTYPES = {"<f8", "<i8", "|i1"}


@dataclass(frozen=True)
class Scores:
    """One model's outputs on one dataset."""

    rows: int
    pred: np.ndarray
    """Class index into ``ModelInfo.classes`` (classifiers), the value (regression), 1 = anomaly (detectors)."""
    proba: np.ndarray | None
    """Class probabilities ``[rows, classes]`` when the classifier gives them."""
    score: np.ndarray | None
    """Higher = more anomalous / more likely the positive class (detectors, binary classifiers)."""


@dataclass(frozen=True)
class Predictions:
    """What one ``predict`` request returned: the models as loaded and every job's scores."""

    models: dict[str, ModelInfo]
    results: dict[tuple[str, str], Scores]
    failed: dict[str, str]
    """Optional models (``optional=True``) that could not be loaded or scored, with the reason."""

    def get(self, model: str, data: str) -> Scores:
        return self.results[(model, data)]


def decode(obj: Any) -> np.ndarray | None:
    """An array sent by the runner (``{"dtype", "shape", "b64"}``), checked; ``None`` stays ``None``."""
    if obj is None:
        return None
    try:
        dtype = str(obj["dtype"])
        shape = tuple(int(s) for s in obj["shape"])
        data = base64.b64decode(obj["b64"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ToolError(f"the model runner sent a malformed array ({exc})") from None
    if dtype not in _DTYPES or any(s < 0 for s in shape) or len(data) != math.prod(shape) * np.dtype(dtype).itemsize:
        raise ToolError(f"the model runner sent an inconsistent array ({dtype}, shape {shape}, {len(data)} bytes)")
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)


def _scores(raw: dict[str, Any], rows: int | None = None) -> Scores:
    pred = decode(raw.get("pred"))
    if pred is None:
        raise ToolError("the model runner sent no predictions")
    out = Scores(rows=int(rows if rows is not None else raw.get("rows", len(pred))), pred=pred,
                 proba=decode(raw.get("proba")), score=decode(raw.get("score")))
    for arr in (out.proba, out.score):
        if arr is not None and len(arr) != len(pred):
            raise ToolError("the model runner sent arrays of different lengths")
    return out


def ask(ctx: ToolContext, op: str, request: dict[str, Any], *, refs: list[ModelRef],
        paths: list[str] = ()) -> dict[str, Any]:
    """Run one operation in the sandboxed runner and return its answer; failures raise.

    ``refs`` are the models the request loads and ``paths`` the datasets it reads (checked here first).
    Raises :class:`ModelError` / :class:`DataError` (both ``UnusableInput``) when the model or the data is at
    fault, :class:`ToolError` when the sandbox is missing or the runner failed otherwise.
    """
    check_workspace(ctx.workspace)
    for path in paths:
        target = resolve_in_workspace(ctx.workspace, path)
        if not target.is_file():
            raise DataError(f"dataset {path!r} does not exist in the workspace", path=path,
                            fix="check the data path in the mission's inputs or the pipeline config")
    text = json.dumps({**request, "op": op})
    result = run_sandboxed([sys.executable, "-I", "-c", RUNNER_SOURCE, text], ctx.workspace, ctx.settings,
                           readonly=True, max_output_bytes=MAX_ANSWER_BYTES)
    logger.debug("model runner %s: exit %s in %.2fs, %d bytes", op, result.exit_code, result.duration_s,
                 len(result.stdout))
    blame = refs[0].artifact if len(refs) == 1 else ""
    if result.timed_out:
        raise ToolError(f"the sandboxed model runner ({op}) did not finish within {ctx.settings.shell_timeout_s:g}s "
                        "(shell_timeout_s): use less data or a faster model")
    if result.truncated:
        raise ToolError(f"the sandboxed model runner's answer ({op}) exceeded {MAX_ANSWER_BYTES >> 20} MiB: "
                        "use a smaller data file")
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        tail = result.stderr.strip()[-600:]
        detail = f"exit code {result.exit_code}" + (f"; stderr: {tail}" if tail else "")
        if blame:  # it died before answering: the model's load or predict is the likely cause
            raise ModelError(f"the sandboxed model runner died while using {blame!r} ({detail})", path=blame,
                             fix="check that the model file is a model saved by the installed libraries, "
                                 "and that it fits the memory limit (shell_memory_mb)")
        raise ToolError(f"the sandboxed model runner ({op}) gave no answer ({detail})")
    if answer.get("ok") is True:
        return answer
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    kind, message = error.get("kind"), str(error.get("message") or "unknown failure")
    path, fix = str(error.get("path") or ""), str(error.get("fix") or "")
    if kind == "model":
        raise ModelError(message, path=path or blame, fix=fix)
    if kind == "convert":
        raise Unconvertible(f"{message}; {fix}" if fix else message)
    if kind == "data":
        raise DataError(message, path=path, fix=fix)
    if error.get("trace"):
        logger.debug("model runner %s failed:\n%s", op, error["trace"])
    raise ToolError(f"the sandboxed model runner ({op}) failed: {message}")


def describe(ctx: ToolContext, path: str, *, prefer_onnx: bool = False) -> ModelInfo:
    """Load the model at ``path`` in the sandbox and say what it is.

    The answer is kept for the mission by content (:class:`_Descriptions`): the same bytes with the same
    metadata, described by the same runner, are the same model. A model whose loading imported the
    workspace's own code is asked again each time (that code may change), and so is one that failed.
    """
    ref = locate_model(ctx.workspace, path, prefer_onnx=prefer_onnx)
    key = _DESCRIPTIONS.key(ctx, ref)
    description = _DESCRIPTIONS.get(key)
    if description is None:
        answer = ask(ctx, "describe", {"models": {"model": ref.spec()}}, refs=[ref])
        description = answer["models"]["model"]
        if not answer.get("workspace_code"):
            _DESCRIPTIONS.put(key, description)
    return model_info(ref, description)


class _Descriptions:
    """The runner's descriptions of models by mission and content, the latest ``size`` in this process."""

    _RUNNER = hashlib.sha256(RUNNER_SOURCE.encode()).hexdigest()

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def key(self, ctx: ToolContext, ref: ModelRef) -> str | None:
        """The mission, the model's content and what the runner is told about it; None when it cannot be read
        here (the runner then says why). An ONNX file may keep its weights in files beside it: those count."""
        artifact = resolve_in_workspace(ctx.workspace, ref.artifact)
        digest = hashlib.sha256(f"{ctx.mission_id}\0{self._RUNNER}\0{sys.executable}\0".encode())
        digest.update(json.dumps(ref.spec(), sort_keys=True, default=str).encode())
        try:
            files = sorted(artifact.parent.iterdir()) if artifact.suffix == ".onnx" else [artifact]
            for file in files:
                if file.is_file():
                    digest.update(f"\0{file.name}\0{file_sha256(file)}".encode())
        except OSError:
            return None
        return digest.hexdigest()

    def get(self, key: str | None) -> dict[str, Any] | None:
        with self._lock:
            found = self._entries.get(key) if key else None
            if found is not None:
                self._entries.move_to_end(key)
            return copy.deepcopy(found)

    def put(self, key: str | None, description: dict[str, Any]) -> None:
        if key is None:
            return
        with self._lock:
            self._entries[key] = copy.deepcopy(description)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_DESCRIPTIONS = _Descriptions()


def predict(ctx: ToolContext, *, models: dict[str, ModelRef], data: dict[str, str], jobs: list[dict[str, Any]],
            optional: tuple[str, ...] = ()) -> Predictions:
    """Score every job (``{"model": name, "data": name, "rows": {"modulo", "remainder"}?}``) in one request.

    A model named in ``optional`` that fails is listed in ``Predictions.failed`` instead of raising.
    """
    specs = {name: {**ref.spec(), "optional": name in optional} for name, ref in models.items()}
    request = {"models": specs, "datasets": data, "jobs": jobs}
    answer = ask(ctx, "predict", request, refs=list(models.values()), paths=list(data.values()))
    infos = {name: model_info(models[name], desc) for name, desc in (answer.get("models") or {}).items()
             if name in models}
    results = {(r["model"], r["data"]): _scores(r) for r in answer.get("results") or []}
    failed = {str(name): str((err or {}).get("message") if isinstance(err, dict) else err)
              for name, err in (answer.get("failed") or {}).items()}
    return Predictions(models=infos, results=results, failed=failed)


def scores_of(raw: dict[str, Any], rows: int) -> Scores:
    """A ``{pred, proba, score}`` block of an answer (export parity, retraining) as :class:`Scores`."""
    return _scores(raw, rows)
