"""Remediation when the model underperforms: retrain a candidate on reference + labelled current data and
recalibrate its threshold, holding back part of the current batch to judge it on."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import yaml
from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml.data import read_json, read_table
from tools.ml.errors import DataError
from tools.ml.metrics import figures, outcome
from tools.ml.rules import check_metrics
from tools.ml.model import locate_model, model_info

__all__ = ["retrain", "retrain_candidate", "HOLDOUT_MODULO"]

HOLDOUT_MODULO = 3
"""Every third row of the current batch (row index % 3 == 0) is held out to judge the candidate."""


def retrain(ctx: ToolContext, *, model_path: str, reference_path: str, current_path: str, label_column: str,
            precision_floor: float | None = None) -> dict[str, Any]:
    """Fit a clone of the production model on reference + the current rows not held out; save it as a candidate.

    Fitting and scoring run in the sandbox (the clone is of an untrusted estimator); the host writes the
    candidate's bytes and metadata and computes the comparison on the held-out rows.
    """
    if precision_floor is None:
        metrics = (read_json(ctx.workspace, ALIGNMENT_PATH).get("thresholds") or {}).get("metrics") or {}
        precision_floor = (metrics.get("precision") or {}).get("floor")
    ref = locate_model(ctx.workspace, model_path)
    cur = read_table(ctx.workspace, current_path)
    for path, frame in ((reference_path, read_table(ctx.workspace, reference_path)), (current_path, cur)):
        if label_column not in frame.columns:
            raise DataError(f"{path!r} has no {label_column!r} column: retraining needs labels", path=path,
                            fix=f"add the ground-truth column {label_column!r} to the data, or name the right one")
    holdout = {"modulo": HOLDOUT_MODULO, "remainder": 0}
    answer = sandboxed.ask(ctx, "retrain", {"model": ref.spec(), "reference": reference_path, "current": current_path,
                                            "label_column": label_column, "holdout": holdout,
                                            "min_precision": precision_floor},
                           refs=[ref], paths=[reference_path, current_path])
    info = model_info(ref, answer["model"])
    version = f"{info.version}-candidate"
    folder = f"{info.directory}-candidate"
    meta = {**info.metadata, "name": info.name, "version": version, "artifact": "model.joblib",
            "parent": {"path": info.artifact, "version": info.version},
            "training": {"data": [reference_path, f"{current_path} (rows with index % {HOLDOUT_MODULO} != 0)"],
                         "rows": int(answer["trained_rows"]), "random_state": answer.get("random_state")},
            "evaluation": {"data": current_path, "holdout": holdout}}
    if info.kind == "anomaly" and answer.get("threshold") is not None:
        meta["prediction"] = {**(info.metadata.get("prediction") or {}), "threshold": float(answer["threshold"])}
    files = [ctx.write_bytes(f"{folder}/model.joblib", base64.b64decode(answer["model_b64"]), kind="model").path,
             ctx.write_text(f"{folder}/model.yaml", yaml.safe_dump(meta, sort_keys=False), kind="model").path]
    rows = int(answer["holdout_rows"])
    held = cur[(np.arange(len(cur)) % HOLDOUT_MODULO) == 0]
    candidate = outcome(info, sandboxed.scores_of(answer["candidate"], rows), held[label_column], path=current_path)
    production = outcome(info, sandboxed.scores_of(answer["production"], rows), held[label_column],
                         path=current_path)
    thresholds = read_json(ctx.workspace, ALIGNMENT_PATH).get("thresholds") or {}
    out = {"status": "ok", "candidate_path": folder, "version": version, "files": files, "kind": info.kind,
           "trained_rows": int(answer["trained_rows"]), "holdout_rows": rows,
           "candidate": figures(candidate), "production": figures(production), "precision_floor": precision_floor}
    alerts = check_metrics(thresholds, candidate, out["candidate"]) if thresholds.get("metrics") else []
    out["alerts"] = [{k: a.get(k) for k in ("name", "metric", "direction", "threshold", "value", "fired")}
                     for a in alerts]
    if precision_floor is not None and "precision" in out["candidate"]:
        out["meets_floor"] = out["candidate"]["precision"] >= precision_floor
    else:
        out["meets_floor"] = not any(a["fired"] for a in alerts)
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
    return json.dumps(retrain(ctx, model_path=model_path, reference_path=reference_path, current_path=current_path,
                              label_column=label_column, precision_floor=precision_floor))
