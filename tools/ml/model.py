"""Loading a workspace model and turning its outputs into labels and scores.

Models live in a workspace folder beside a ``model.yaml`` that names the artifact, the feature columns
and how predictions read (an anomaly detector's ``-1`` or a classifier's positive class). ONNX is
preferred; joblib/pickle files are loaded only from inside the workspace, and every load says that
unpickling runs code.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from orchestrator.errors import ToolError
from tools.workspace import resolve_in_workspace

__all__ = ["ModelInfo", "ModelError", "LoadedModel", "load_model", "PICKLE_WARNING", "file_sha256"]

logger = logging.getLogger(__name__)

PICKLE_WARNING = ("joblib/pickle artifacts execute code when loaded: load them only from a trusted workspace "
                  "and prefer the ONNX export for serving")
_PICKLE_SUFFIXES = {".joblib", ".pkl", ".pickle"}
_WARNED: set[Path] = set()


class ModelError(ToolError):
    """The model cannot be found, read or used; the message says which file and what to do."""


@dataclass
class ModelInfo:
    """What a model's metadata says about it."""

    name: str
    version: str
    directory: str
    """Workspace-relative folder of the model."""
    artifact: str
    """Workspace-relative path of the file that was loaded."""
    format: str
    """``onnx``, ``joblib`` or ``pickle``."""
    features: list[str]
    kind: str = "classifier"
    """``anomaly`` (``predict`` returns ``anomaly_label`` for anomalies) or ``classifier``."""
    anomaly_label: int = -1
    positive_label: int = 1
    label_column: str | None = None
    id_column: str | None = None
    estimator: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """A JSON-ready summary (without the raw metadata)."""
        return {"name": self.name, "version": self.version, "directory": self.directory, "artifact": self.artifact,
                "format": self.format, "estimator": self.estimator, "kind": self.kind,
                "n_features": len(self.features), "features": self.features, "label_column": self.label_column,
                "id_column": self.id_column, "warnings": self.warnings}


@dataclass
class LoadedModel:
    """A model ready to score feature matrices, whatever its format."""

    info: ModelInfo
    estimator: Any = None
    session: Any = None
    """onnxruntime session when the ONNX artifact was loaded."""

    def predict_positive(self, x: np.ndarray) -> np.ndarray:
        """1 where the model flags the row (anomaly / positive class), else 0."""
        if self.session is not None:
            labels = self._onnx(x)[0].reshape(-1)
        else:
            labels = np.asarray(self.estimator.predict(x)).reshape(-1)
        target = self.info.anomaly_label if self.info.kind == "anomaly" else self.info.positive_label
        return (labels == target).astype(np.int8)

    def score(self, x: np.ndarray) -> np.ndarray | None:
        """Higher means more anomalous / more likely positive; None when the model gives no score."""
        if self.session is not None:
            outputs = self._onnx(x)
            if len(outputs) < 2:
                return None
            raw = np.asarray(outputs[1], dtype=np.float64)
            return -raw.reshape(-1) if self.info.kind == "anomaly" else raw[:, -1]
        est = self.estimator
        if self.info.kind == "anomaly" and hasattr(est, "decision_function"):
            # decision_function (score - threshold) is what the ONNX export outputs too.
            return -np.asarray(est.decision_function(x), dtype=np.float64)
        if hasattr(est, "predict_proba"):
            return np.asarray(est.predict_proba(x), dtype=np.float64)[:, -1]
        if hasattr(est, "decision_function"):
            return np.asarray(est.decision_function(x), dtype=np.float64).reshape(-1)
        return None

    def _onnx(self, x: np.ndarray) -> list[np.ndarray]:
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: np.asarray(x, dtype=np.float32)})


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _find_artifact(folder: Path, meta: dict[str, Any], prefer_onnx: bool) -> Path:
    named = folder / str(meta.get("artifact", "")) if meta.get("artifact") else None
    candidates = sorted(p for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES | {".onnx"})
    if prefer_onnx and (folder / "model.onnx").is_file():
        return folder / "model.onnx"
    if named is not None and named.is_file():
        return named
    if not candidates:
        raise ModelError(f"no model artifact (.onnx, .joblib, .pkl) in {folder.name!r}: add one, or point at the file")
    return candidates[0]


def load_model(workspace: Path, path: str, *, prefer_onnx: bool = False) -> LoadedModel:
    """Load the model at ``path`` (a folder with ``model.yaml`` or an artifact file) from the workspace.

    Raises :class:`ModelError` when the model is missing, corrupt or does not expose ``predict``.
    """
    target = resolve_in_workspace(workspace, path)
    if not target.exists():
        raise ModelError(f"model {path!r} does not exist in the workspace: check the mission's inputs")
    folder = target if target.is_dir() else target.parent
    meta: dict[str, Any] = {}
    meta_file = folder / "model.yaml"
    if meta_file.is_file():
        try:
            meta = yaml.safe_load(meta_file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ModelError(f"model metadata {meta_file.name!r} is not valid YAML: {exc}") from None
        if not isinstance(meta, dict):
            raise ModelError(f"model metadata {meta_file.name!r} must be a mapping")
    artifact = _find_artifact(folder, meta, prefer_onnx) if target.is_dir() else target
    root = workspace.resolve()
    info = _info(meta, folder.relative_to(root).as_posix(), artifact.relative_to(root).as_posix())
    if artifact.suffix == ".onnx":
        return _load_onnx(artifact, info)
    info.format = "joblib" if artifact.suffix == ".joblib" else "pickle"
    info.warnings.append(PICKLE_WARNING)
    if artifact not in _WARNED:  # the warning travels in every result; the log says it once per file
        _WARNED.add(artifact)
        logger.warning("loading %s: %s", info.artifact, PICKLE_WARNING)
    try:
        import joblib

        estimator = joblib.load(artifact)
    except Exception as exc:  # a corrupt pickle raises anything (UnpicklingError, EOFError, KeyError...)
        raise ModelError(f"model file {info.artifact!r} cannot be loaded ({type(exc).__name__}: {exc}); "
                         "it is corrupt or was saved by an incompatible library version") from None
    if not hasattr(estimator, "predict"):
        raise ModelError(f"{info.artifact!r} holds a {type(estimator).__name__}, which has no predict()")
    info.estimator = type(estimator).__name__
    if not info.features:
        names = getattr(estimator, "feature_names_in_", None)
        info.features = [str(n) for n in names] if names is not None else []
    if not meta.get("prediction") and type(estimator).__name__ in {"IsolationForest", "OneClassSVM", "LocalOutlierFactor"}:
        info.kind = "anomaly"
    return LoadedModel(info=info, estimator=estimator)


def _info(meta: dict[str, Any], directory: str, artifact: str) -> ModelInfo:
    prediction = meta.get("prediction") or {}
    return ModelInfo(
        name=str(meta.get("name") or Path(directory).name),
        version=str(meta.get("version") or "0.0.0"),
        directory=directory,
        artifact=artifact,
        format="onnx",
        features=[str(f) for f in meta.get("features") or []],
        kind=str(prediction.get("kind", "classifier")),
        anomaly_label=int(prediction.get("anomaly_label", -1)),
        positive_label=int(prediction.get("positive_label", 1)),
        label_column=meta.get("label_column"),
        id_column=meta.get("id_column"),
        estimator=str(meta.get("estimator", "")),
        metadata=meta,
    )


def _load_onnx(artifact: Path, info: ModelInfo) -> LoadedModel:
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"ONNX model {info.artifact!r} cannot be loaded ({type(exc).__name__}: {exc})") from None
    info.format = "onnx"
    return LoadedModel(info=info, session=session)
