"""A workspace model as the host knows it: where its artifact is, what ``model.yaml`` says, and what the
sandboxed runner found when it loaded it.

Models live in a workspace folder, optionally beside a ``model.yaml`` naming the artifact, the feature
columns and how predictions read (kind, positive class, anomaly label); when present it wins over what the
artifact says. The host only lists files and parses that YAML (``safe_load``): loading the artifact itself,
joblib/pickle or ONNX, happens in the sandbox (:mod:`tools.ml.sandboxed`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tools.ml.errors import DataError, ModelError, check_workspace
from tools.workspace import resolve_in_workspace

__all__ = ["Kind", "ModelRef", "ModelInfo", "ModelError", "DataError", "locate_model", "model_info",
           "PICKLE_WARNING", "ARTIFACT_SUFFIXES", "file_sha256"]

Kind = Literal["binary", "multiclass", "regression", "anomaly"]
"""What a model predicts: a class out of two, a class out of several, a number, or an anomaly flag."""

PICKLE_WARNING = ("joblib/pickle artifacts execute code when loaded: this one is only loaded inside the sandbox; "
                  "serve the ONNX export, or load it only from a trusted image after checking its sha256")
ARTIFACT_SUFFIXES = (".onnx", ".joblib", ".pkl", ".pickle")


@dataclass(frozen=True)
class ModelRef:
    """A model located on the host: its folder, the artifact to load and its metadata (nothing loaded yet)."""

    directory: str
    """Workspace-relative folder of the model."""
    artifact: str
    """Workspace-relative path of the file to load."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """``model.yaml`` as a mapping ({} when absent)."""

    def spec(self) -> dict[str, Any]:
        """What the sandboxed runner needs to load it."""
        return {"artifact": self.artifact, "meta": self.metadata}


@dataclass
class ModelInfo:
    """What a model is, from its metadata and from the artifact as loaded in the sandbox."""

    name: str
    version: str
    directory: str
    artifact: str
    format: str
    """``onnx``, ``joblib`` or ``pickle``."""
    features: list[str]
    kind: Kind
    classes: list[Any] | None = None
    """Class labels in the model's order (classifiers); predictions come back as indices into them."""
    positive_label: Any = None
    """The class a binary classifier's score and precision are about."""
    anomaly_label: Any = -1
    label_column: str | None = None
    id_column: str | None = None
    estimator: str = ""
    input: str = "matrix"
    """``frame`` when the model was fitted on a DataFrame (named, possibly string columns), else ``matrix``."""
    description: dict[str, Any] = field(default_factory=dict)
    """Everything the runner reported (params, seeds, threshold, steps, ONNX inputs/outputs)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """A JSON-ready summary (without the raw metadata)."""
        return {"name": self.name, "version": self.version, "directory": self.directory, "artifact": self.artifact,
                "format": self.format, "estimator": self.estimator, "kind": self.kind, "classes": self.classes,
                "positive_label": self.positive_label, "n_features": len(self.features), "features": self.features,
                "label_column": self.label_column, "id_column": self.id_column, "warnings": self.warnings}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _metadata(folder: Path, rel: str) -> dict[str, Any]:
    meta_file = folder / "model.yaml"
    if not meta_file.is_file():
        return {}
    try:
        meta = yaml.safe_load(meta_file.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"model metadata {rel}/model.yaml is not valid YAML: {exc}", path=f"{rel}/model.yaml",
                         fix="fix the YAML syntax, or remove model.yaml to let the artifact describe itself") from None
    if not isinstance(meta, dict):
        raise ModelError(f"model metadata {rel}/model.yaml must be a mapping", path=f"{rel}/model.yaml",
                         fix="write model.yaml as 'key: value' lines (name, features, prediction...)")
    return meta


def _inner_models(folder: Path) -> list[Path]:
    """The model folders directly inside ``folder`` when it holds no artifact itself (candidates aside)."""
    if not folder.is_dir() or any(p.suffix in ARTIFACT_SUFFIXES and p.is_file() for p in folder.iterdir()):
        return []
    return [d for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.endswith("-candidate")
            and any(p.suffix in ARTIFACT_SUFFIXES and p.is_file() for p in d.iterdir())]


def inner_model(folder: Path) -> Path | None:
    """The one model folder inside ``folder`` (a mission naming ``models/`` for ``models/churn/``); None when
    there are none or several (which one is meant is not guessed)."""
    inner = _inner_models(folder)
    return inner[0] if len(inner) == 1 else None


def locate_model(workspace: Path, path: str, *, prefer_onnx: bool = False) -> ModelRef:
    """The model at ``path`` (a folder, with or without ``model.yaml``, or an artifact file); nothing is loaded.

    Raises :class:`ModelError` when there is no model there.
    """
    check_workspace(workspace)
    if not path:
        raise ModelError("no model path given", path="models/", fix="name the model folder in the mission's inputs")
    target = resolve_in_workspace(workspace, path)
    if not target.exists():
        raise ModelError(f"model {path!r} does not exist in the workspace", path=path,
                         fix="check the mission's inputs: name the folder or file that holds the model")
    root = workspace.resolve()
    folder = target if target.is_dir() else target.parent
    rel = folder.relative_to(root).as_posix()
    meta = _metadata(folder, rel)
    if target.is_file():
        artifact = target
    else:
        named = folder / str(meta["artifact"]) if meta.get("artifact") else None
        candidates = sorted(p for p in folder.iterdir() if p.suffix in ARTIFACT_SUFFIXES and p.is_file())
        if prefer_onnx and (folder / "model.onnx").is_file():
            artifact = folder / "model.onnx"
        elif named is not None and named.is_file():
            artifact = named
        elif candidates:
            artifact = candidates[0]
        elif len(inner := _inner_models(folder)) == 1:  # "models/" naming the one model folder in it
            return locate_model(workspace, inner[0].relative_to(root).as_posix(), prefer_onnx=prefer_onnx)
        else:
            several = [d.name for d in inner]
            raise ModelError(f"no model artifact (.onnx, .joblib, .pkl) in {rel!r}"
                             + (f"; it holds several model folders ({', '.join(several)})" if several else ""),
                             path=rel, fix="name the model's own folder or file in the mission's inputs"
                             if several else "put the model file in that folder, or point the mission at the file itself")
    resolve_in_workspace(workspace, artifact.relative_to(root).as_posix())  # a symlink out is refused here too
    return ModelRef(directory=rel, artifact=artifact.relative_to(root).as_posix(), metadata=meta)


def model_info(ref: ModelRef, description: dict[str, Any]) -> ModelInfo:
    """Combine the host's metadata with the runner's description of the loaded artifact."""
    meta = ref.metadata
    prediction = meta.get("prediction") or {}
    fmt = str(description.get("format") or "onnx")
    info = ModelInfo(
        name=str(meta.get("name") or Path(ref.directory).name or "model"),
        version=str(meta.get("version") or "0.0.0"),
        directory=ref.directory, artifact=ref.artifact, format=fmt,
        features=[str(f) for f in description.get("features") or []],
        kind=description.get("kind") or "binary",
        classes=description.get("classes"),
        positive_label=description.get("positive_label"),
        anomaly_label=prediction.get("anomaly_label", -1),
        label_column=meta.get("label_column"), id_column=meta.get("id_column"),
        estimator=str(description.get("estimator") or meta.get("estimator") or ""),
        input=str(description.get("input") or "matrix"),
        description=description, metadata=meta,
    )
    if fmt != "onnx":
        info.warnings.append(PICKLE_WARNING)
    return info
