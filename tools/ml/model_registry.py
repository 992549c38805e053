"""The workspace's file-based model registry (``registry/``) and the reproducibility manifest."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml import sandboxed
from tools.ml.data import read_json
from tools.ml.evaluation import EVALUATION_PATH
from tools.ml.model import ModelInfo, file_sha256
from tools.ml.packaging import PARITY_PATH, RUNTIME_PACKAGES

__all__ = ["register", "register_model", "manifest", "write_manifest", "code_version", "MANIFEST_PATH"]

MANIFEST_PATH = "reports/reproducibility-manifest.json"
_TOOLKIT_PACKAGES = ("scipy", "skl2onnx", "onnx", "fairlearn", "jinja2", "matplotlib")
_CODE_DIRS = ("pipelines", "service", "tests")



def code_version(workspace: Path) -> dict[str, Any]:
    """The git commit when the workspace is a repository, and always a sha256 over the code files."""
    digest = hashlib.sha256()
    files = sorted(p for d in _CODE_DIRS if (workspace / d).is_dir() for p in (workspace / d).rglob("*.py")
                   if "__pycache__" not in p.parts)
    for file in files + [p for p in (workspace / "Dockerfile", workspace / "requirements.txt") if p.is_file()]:
        digest.update(file.relative_to(workspace).as_posix().encode())
        digest.update(file.read_bytes())
    out: dict[str, Any] = {"code_sha256": digest.hexdigest(), "files": len(files)}
    if (workspace / ".git").exists():
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workspace, capture_output=True, text=True, timeout=10)
        if proc.returncode == 0:
            out["git_commit"] = proc.stdout.strip()
    return out


def register(ctx: ToolContext, *, model_path: str, version: str = "", stage: str = "staging") -> dict[str, Any]:
    """Write ``registry/<name>/<version>.json`` and update ``registry/index.json``."""
    info = sandboxed.describe(ctx, model_path)
    version = version or info.version
    folder = ctx.workspace / info.directory
    artifacts = [{"path": p.relative_to(ctx.workspace).as_posix(), "sha256": file_sha256(p), "bytes": p.stat().st_size}
                 for p in sorted(folder.iterdir()) if p.is_file()]
    evaluation, alignment = read_json(ctx.workspace, EVALUATION_PATH), read_json(ctx.workspace, ALIGNMENT_PATH)
    entry = {
        "name": info.name, "version": version, "stage": stage, "estimator": info.estimator, "kind": info.kind,
        "classes": info.classes, "features": info.features, "artifacts": artifacts,
        "metrics": {"baseline": alignment.get("baseline"), "evaluation": evaluation.get("performance"),
                    "alerts": [{k: a.get(k) for k in ("name", "fired", "value", "threshold")}
                               for a in evaluation.get("alerts", [])],
                    "candidate": (evaluation.get("candidate") or {}).get("performance")},
        "thresholds": alignment.get("thresholds"),
        "datasets": evaluation.get("datasets") or alignment.get("datasets"),
        "onnx_parity": {k: v for k, v in read_json(ctx.workspace, PARITY_PATH).items()
                        if k in ("status", "max_abs_score_diff", "labels_identical", "tolerance")} or None,
        "code_version": code_version(ctx.workspace),
    }
    rel = f"registry/{info.name}/{version}.json"
    training = read_json(ctx.workspace, rel).get("training")  # the training pipeline's run, kept for its re-run test
    if training:
        entry["training"] = training
    ctx.write_text(rel, json.dumps(entry, indent=2), kind="registry")
    index = read_json(ctx.workspace, "registry/index.json") or {"models": {}}
    versions = index["models"].setdefault(info.name, {})
    versions[version] = {"entry": rel, "stage": stage, "sha256": artifacts[0]["sha256"] if artifacts else None}
    ctx.write_text("registry/index.json", json.dumps(index, indent=2, sort_keys=True), kind="registry")
    return {"status": "ok", "entry": rel, "index": "registry/index.json", "name": info.name, "version": version,
            "stage": stage, "artifacts": artifacts, "code_version": entry["code_version"]}


@tool(parse_docstring=True)
def register_model(model_path: str, version: str = "", stage: str = "staging", *, ctx: Ctx) -> str:
    """Register the model in the workspace registry (registry/<name>/<version>.json + registry/index.json):
    artifact hashes, metrics and alerts from the evaluation, dataset fingerprints, thresholds, ONNX parity
    and the code version.

    Args:
        model_path: Workspace-relative model folder.
        version: Version to register (default: the version in model.yaml).
        stage: Registry stage: staging, canary or production.
    """
    return json.dumps(register(ctx, model_path=model_path, version=version, stage=stage))


def _seeds(info: ModelInfo) -> dict[str, Any]:
    seeds: dict[str, Any] = {}
    training = info.metadata.get("training") or {}
    if "random_state" in training:
        seeds["training.random_state"] = training["random_state"]
    seeds.update({f"estimator.{k}": v for k, v in (info.description.get("seeds") or {}).items()
                  if isinstance(v, (int, type(None)))})
    return seeds


def manifest(ctx: ToolContext, *, model_path: str) -> dict[str, Any]:
    """Exact versions, seeds and hashes needed to rebuild and re-check the deliverables."""
    info = sandboxed.describe(ctx, model_path)  # its seeds; a model that does not load is an error
    versions = {}
    for name in RUNTIME_PACKAGES + _TOOLKIT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    tracked = [p for pattern in ("models/**/*", "data/*.csv", "pipelines/**/*.py", "pipelines/*.yaml",
                                 "monitoring/*.yaml", "Dockerfile", "requirements.txt")
               for p in sorted(ctx.workspace.glob(pattern)) if p.is_file() and "__pycache__" not in p.parts]
    return {
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(), "packages": versions, "seeds": _seeds(info),
        "hashes": {p.relative_to(ctx.workspace).as_posix(): file_sha256(p) for p in tracked},
        "code_version": code_version(ctx.workspace),
        "commands": ["pip install -r requirements.txt", "python -m pipelines.batch_scoring --dry-run",
                     "python -m pytest tests"],
        "interpreter": Path(sys.executable).name,
    }


@tool(parse_docstring=True)
def write_manifest(model_path: str, *, ctx: Ctx) -> str:
    """Write the reproducibility manifest (reports/reproducibility-manifest.json): exact package versions,
    Python and platform, random seeds, sha256 of models, data, pipeline code and configs.

    Args:
        model_path: Workspace-relative model folder (for its seeds).
    """
    doc = manifest(ctx, model_path=model_path)
    ctx.write_text(MANIFEST_PATH, json.dumps(doc, indent=2), kind="manifest")
    return json.dumps({"status": "ok", "path": MANIFEST_PATH, "packages": doc["packages"], "seeds": doc["seeds"],
                       "files_hashed": len(doc["hashes"]), "code_sha256": doc["code_version"]["code_sha256"]})
