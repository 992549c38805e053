"""Remediation when the model underperforms: retrain a candidate on reference + labelled current data and
recalibrate its threshold, holding back part of the current batch to judge it on."""

from __future__ import annotations

import io
import json
from typing import Any

import joblib
import numpy as np
import pandas as pd
import yaml
from langchain_core.tools import tool
from sklearn.base import clone

from tools.context import Ctx, ToolContext
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml.data import DataError, read_json, read_table
from tools.ml.metrics import performance
from tools.ml.model import ModelError, load_model

__all__ = ["retrain", "retrain_candidate", "HOLDOUT_MODULO"]

HOLDOUT_MODULO = 3
"""Every third row of the current batch (row index % 3 == 0) is held out to judge the candidate."""


def _calibrate(scores: np.ndarray, y: np.ndarray, *, min_precision: float | None) -> float:
    """Anomaly threshold on ``score_samples``: best F0.5, preferring thresholds meeting ``min_precision``."""
    best, best_key = float(np.quantile(scores, 0.1)), (-1, -1.0)
    for t in np.quantile(scores, np.linspace(0.01, 0.3, 59)):
        pred = scores < t
        tp = int((pred & (y == 1)).sum())
        if tp == 0:
            continue
        p, r = tp / pred.sum(), tp / max((y == 1).sum(), 1)
        f = 1.25 * p * r / (0.25 * p + r)
        key = (int(min_precision is None or p >= min_precision), f)
        if key > best_key:
            best, best_key = float(t), key
    return best


def retrain(ctx: ToolContext, *, model_path: str, reference_path: str, current_path: str, label_column: str,
            precision_floor: float | None = None) -> dict[str, Any]:
    """Fit a clone of the production model on reference + the current rows not held out; save it as a candidate."""
    if precision_floor is None:
        metrics = (read_json(ctx.workspace, ALIGNMENT_PATH).get("thresholds") or {}).get("metrics") or {}
        precision_floor = (metrics.get("precision") or {}).get("floor")
    loaded = load_model(ctx.workspace, model_path)
    if loaded.estimator is None:
        raise ModelError(f"{model_path!r} is ONNX only: retraining needs the scikit-learn estimator")
    info = loaded.info
    ref, cur = read_table(ctx.workspace, reference_path), read_table(ctx.workspace, current_path)
    for name, frame in (("reference", ref), ("current", cur)):
        if label_column not in frame.columns:
            raise DataError(f"{name} data has no {label_column!r} column: retraining needs labels")
    held = (np.arange(len(cur)) % HOLDOUT_MODULO) == 0
    train = pd.concat([ref, cur[~held]], ignore_index=True)
    x, y = train[info.features].to_numpy(dtype=float), train[label_column].to_numpy().astype(int)
    estimator = clone(loaded.estimator)
    if info.kind == "anomaly":
        estimator.fit(x[y == 0])  # as the original: fitted on normal traffic, labels only calibrate
        if not hasattr(estimator, "offset_"):
            raise ModelError(f"{type(estimator).__name__} has no offset_ to recalibrate")
        estimator.offset_ = _calibrate(estimator.score_samples(x), y, min_precision=precision_floor)
    else:
        estimator.fit(x, y)
    version = f"{info.version}-candidate"
    folder = f"{info.directory}-candidate"
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    meta = {**info.metadata, "name": info.name, "version": version, "artifact": "model.joblib",
            "parent": {"path": info.artifact, "version": info.version},
            "training": {"data": [reference_path, f"{current_path} (rows with index % {HOLDOUT_MODULO} != 0)"],
                         "rows": int(len(train)), "random_state": estimator.get_params().get("random_state")},
            "evaluation": {"data": current_path, "holdout": {"modulo": HOLDOUT_MODULO, "remainder": 0}}}
    if info.kind == "anomaly":
        meta["prediction"] = {**(info.metadata.get("prediction") or {}), "threshold": float(estimator.offset_)}
    files = [ctx.write_bytes(f"{folder}/model.joblib", buffer.getvalue(), kind="model").path,
             ctx.write_text(f"{folder}/model.yaml", yaml.safe_dump(meta, sort_keys=False), kind="model").path]
    candidate = load_model(ctx.workspace, folder)
    rows = cur[held]
    xh = rows[info.features].to_numpy(dtype=float)
    truth = rows[label_column].to_numpy()
    out = {"status": "ok", "candidate_path": folder, "version": version, "files": files,
           "trained_rows": int(len(train)), "holdout_rows": int(held.sum()),
           "candidate": performance(truth, candidate.predict_positive(xh), candidate.score(xh)),
           "production": performance(truth, loaded.predict_positive(xh), loaded.score(xh)),
           "precision_floor": precision_floor}
    out["meets_floor"] = precision_floor is None or out["candidate"]["precision"] >= precision_floor
    ctx.write_text("reports/remediation.json", json.dumps(out, indent=2), kind="report")
    return out


@tool(parse_docstring=True)
def retrain_candidate(model_path: str, reference_path: str, current_path: str, label_column: str,
                      precision_floor: float | None = None, *, ctx: Ctx) -> str:
    """Retrain a candidate model (same estimator and parameters) on the reference data plus two thirds of
    the labelled current batch, recalibrate its alert threshold (aiming at the precision floor), and
    compare candidate and production on the held-out third. Saves <model folder>-candidate/ and
    reports/remediation.json; evaluate it with evaluate_model(candidate_path=...).

    Args:
        model_path: Workspace-relative production model folder.
        reference_path: Labelled reference CSV.
        current_path: Labelled current batch CSV.
        label_column: Ground-truth column.
        precision_floor: Precision the candidate should reach; empty to read it from reports/alignment.json.
    """
    try:
        return json.dumps(retrain(ctx, model_path=model_path, reference_path=reference_path,
                                  current_path=current_path, label_column=label_column,
                                  precision_floor=precision_floor))
    except (ModelError, DataError) as exc:
        return json.dumps({"status": "failed", "error": str(exc)})
