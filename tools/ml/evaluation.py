"""Evaluation of the monitored batch: performance, drift, bias and alerts, written as
``reports/evaluation.json`` (stable schema), ``reports/evaluation.html`` and ``monitoring/alerts.yaml``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate
from langchain_core.tools import tool
from sklearn.metrics import precision_score, recall_score

from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.alignment import ALIGNMENT_PATH, align
from tools.ml.data import fingerprint, read_json, read_table
from tools.ml.drift import drift_table
from tools.ml.metrics import Z_ONE_SIDED_95, flags, performance, truth_flags
from tools.ml.model import ModelInfo, file_sha256, locate_model
from tools.ml.monitoring import ALERTS_PATH, FOUR_FIFTHS, alert_rules, render_rules
from tools.ml.report import render_html

__all__ = ["evaluate", "evaluate_model", "bias_table", "EVALUATION_PATH", "EVALUATION_HTML", "SCHEMA_VERSION"]

EVALUATION_PATH = "reports/evaluation.json"
EVALUATION_HTML = "reports/evaluation.html"
SCHEMA_VERSION = 1


def bias_table(y_true: np.ndarray | None, y_pred: np.ndarray, segments: pd.Series) -> dict[str, Any]:
    """Per-segment metrics and disparity ratios (min/max across segments) through fairlearn's MetricFrame."""
    metrics: dict[str, Any] = {"alert_rate": selection_rate, "count": lambda yt, yp: len(yp)}
    if y_true is not None:
        metrics.update(precision=lambda yt, yp: precision_score(yt, yp, zero_division=0),
                       recall=lambda yt, yp: recall_score(yt, yp, zero_division=0))
    truth = y_true if y_true is not None else y_pred
    frame = MetricFrame(metrics=metrics, y_true=truth, y_pred=y_pred, sensitive_features=segments.astype(str))
    by_group = {str(g): {k: round(float(v), 6) for k, v in row.items()} for g, row in frame.by_group.iterrows()}
    ratios = frame.ratio()
    disparity = {f"{m}_ratio": round(float(ratios[m]), 6) for m in metrics if m != "count"}
    key = "precision_ratio" if y_true is not None else "alert_rate_ratio"
    return {"segment_column": str(segments.name), "by_group": by_group, "disparity": disparity,
            "headline": key, "threshold": FOUR_FIFTHS, "flagged": disparity[key] < FOUR_FIFTHS}


def _alert(name: str, fired: bool, value: float | None, threshold: float, **detail: Any) -> dict[str, Any]:
    return {"name": name, "fired": bool(fired), "value": value, "threshold": threshold, **detail}


def _metric_alerts(thresholds: dict[str, Any], perf: dict[str, Any] | None, pred: np.ndarray) -> list[dict[str, Any]]:
    alerts = []
    for metric, entry in (thresholds.get("metrics") or {}).items():
        if entry.get("floor") is None or perf is None or metric not in perf:
            continue
        enough = perf["predicted_positives"] >= (entry.get("min_predicted_positives") or 0)
        alerts.append(_alert(f"{metric}_drop", perf[metric] < entry["floor"], perf[metric], entry["floor"],
                             baseline=entry["baseline"], sample_sufficient=enough,
                             note=None if enough else "fewer alerts than the minimum: the figure is noisy"))
    rate = thresholds.get("alert_rate")
    if perf is None and rate:
        value = round(float(pred.mean()), 6)
        ceiling = rate["ceiling"]
        # Fire only when the excess over the ceiling is beyond sampling noise for this batch size.
        limit = round(ceiling + Z_ONE_SIDED_95 * math.sqrt(ceiling * (1 - ceiling) / max(len(pred), 1)), 6)
        alerts.append(_alert("alert_rate", value > limit, value, limit, ceiling=ceiling, baseline=rate["baseline"],
                             note="no labels: precision cannot be measured, the alert rate stands in for it"))
    return alerts


def _candidate(ctx: ToolContext, path: str, scored: sandboxed.Predictions, holdout: dict[str, int],
               current: pd.DataFrame, production: ModelInfo, label: str, thresholds: dict[str, Any]) -> dict[str, Any]:
    if "candidate" in scored.failed:
        return {"path": path, "error": scored.failed["candidate"], "passes": False}
    cand = scored.models["candidate"]
    mask = (np.arange(len(current)) % int(holdout["modulo"])) == int(holdout["remainder"])
    rows = current[mask]
    cand_scores, prod_scores = scored.get("candidate", "current"), scored.get("model", "current")
    truth_c = truth_flags(cand, rows[label], path=path)
    truth_p = truth_flags(production, rows[label], path=path)
    cand_perf = performance(truth_c, flags(cand, cand_scores), cand_scores.score)
    prod_score = prod_scores.score[mask] if prod_scores.score is not None else None
    prod_perf = performance(truth_p, flags(production, prod_scores)[mask], prod_score)
    alerts = _metric_alerts(thresholds, cand_perf, np.zeros(0))
    return {"path": path, "version": cand.version, "sha256": file_sha256(ctx.workspace / cand.artifact),
            "holdout": {**holdout, "rows": int(mask.sum()), "data": "current batch rows not used for training"},
            "performance": cand_perf, "production_on_holdout": prod_perf, "alerts": alerts,
            "passes": not any(a["fired"] for a in alerts)}


def evaluate(ctx: ToolContext, *, model_path: str, reference_path: str, current_path: str, label_column: str = "",
             segment_column: str = "", candidate_path: str = "", alignment: dict[str, Any] | None = None,
             constraints: list[str] | None = None) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The evaluation document, plus the two frames (for the plots).

    Raises ``UnusableInput`` when the model or the data cannot be used; one sandbox call scores the
    reference, the current batch and the candidate's held-out rows.
    """
    workspace = ctx.workspace
    if alignment is None:
        alignment = align(ctx, model_path=model_path, reference_path=reference_path, current_path=current_path,
                          constraints=constraints, label_column=label_column, segment_column=segment_column)
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "model": None, "datasets": {}, "labelled": False,
                           "performance": {}, "drift": {"features": [], "drifted": []}, "bias": None, "alerts": [],
                           "thresholds": alignment.get("thresholds", {}), "candidate": None, "findings": []}
    findings = out["findings"]
    production = locate_model(workspace, model_path)
    ref, cur = read_table(workspace, reference_path), read_table(workspace, current_path)
    label = label_column or alignment.get("label_column") or production.metadata.get("label_column") or ""
    models = {"model": production}
    jobs = [{"model": "model", "data": "reference"}, {"model": "model", "data": "current"}]
    holdout: dict[str, int] = {}
    if candidate_path and label and label in cur.columns:
        candidate = locate_model(workspace, candidate_path)
        holdout = (candidate.metadata.get("evaluation") or {}).get("holdout") or {"modulo": 1, "remainder": 0}
        holdout = {"modulo": int(holdout["modulo"]), "remainder": int(holdout["remainder"])}
        models["candidate"] = candidate
        jobs.append({"model": "candidate", "data": "current", "rows": holdout})
    scored = sandboxed.predict(ctx, models=models, data={"reference": reference_path, "current": current_path},
                               jobs=jobs, optional=("candidate",))
    model = scored.models["model"]
    out["model"] = {**model.public(), "sha256": file_sha256(workspace / model.artifact)}
    for role, path in (("reference", reference_path), ("current", current_path)):
        out["datasets"][role] = fingerprint(workspace, path)
    label = label or model.label_column or ""
    segment = segment_column or alignment.get("segment_column") or ""
    ref_scores, cur_scores = scored.get("model", "reference"), scored.get("model", "current")
    pred = flags(model, cur_scores)
    ref_perf = performance(truth_flags(model, ref[label], path=reference_path), flags(model, ref_scores),
                           ref_scores.score) if label and label in ref.columns else None
    cur_perf = performance(truth_flags(model, cur[label], path=current_path), pred,
                           cur_scores.score) if label and label in cur.columns else None
    out["labelled"] = cur_perf is not None
    out["performance"] = {"reference": ref_perf, "current": cur_perf or {"rows": int(len(cur)),
                          "alert_rate": round(float(pred.mean()), 6)}}
    if cur_perf is None:
        findings.append({"severity": "medium", "title": "no labels in the current batch",
                         "detail": f"no {label or 'label'!r} column: precision cannot be measured; "
                                   "monitoring falls back to the alert rate"})
    psi = (out["thresholds"].get("psi") or {})
    out["drift"] = drift_table(ref, cur, model.features, bins=int(psi.get("bins", 10)),
                               alert_at=float(psi.get("significant", 0.2)))
    drift = out["drift"]
    max_psi = max((f["psi"] for f in drift["features"]), default=0.0)
    out["alerts"].append(_alert("feature_drift", bool(drift["drifted"]), max_psi, drift["significant"],
                                features=drift["drifted"]))
    out["alerts"] += _metric_alerts(out["thresholds"], cur_perf, pred)
    if segment and segment in cur.columns:
        truth = truth_flags(model, cur[label], path=current_path) if cur_perf is not None else None
        out["bias"] = bias_table(truth, pred, cur[segment])
        out["alerts"].append(_alert("bias_disparity", out["bias"]["flagged"],
                                    out["bias"]["disparity"][out["bias"]["headline"]], FOUR_FIFTHS,
                                    metric=out["bias"]["headline"]))
    elif segment:
        findings.append({"severity": "low", "title": "segment column absent",
                         "detail": f"{segment!r} is not a column of the current batch: no bias figures"})
    if "candidate" in models:
        out["candidate"] = _candidate(ctx, candidate_path, scored, holdout, cur, model, label, out["thresholds"])
    metric_fired = [a["name"] for a in out["alerts"] if a["fired"] and a["name"].endswith("_drop")]
    candidate_ok = bool(out["candidate"] and out["candidate"]["passes"])
    out["selected_model"] = out["candidate"]["path"] if candidate_ok else model_path
    out["status"] = "pass" if not metric_fired else ("candidate_passes" if candidate_ok else "fail")
    out["fired"] = [a["name"] for a in out["alerts"] if a["fired"]]
    out["rules"] = alert_rules(alignment, features=model.features, reference_path=reference_path,
                               segment_column=segment if out["bias"] else None)
    return out, ref, cur


@tool(parse_docstring=True)
def evaluate_model(model_path: str, reference_path: str, current_path: str, label_column: str = "",
                   segment_column: str = "", candidate_path: str = "", *,
                   ctx: Ctx) -> str:
    """Evaluate the model on the current batch against the reference: performance (when labelled),
    per-feature drift (PSI on reference-quantile bins, KS/chi2 beside it), bias per segment (fairlearn),
    and alerts against the thresholds in reports/alignment.json. Writes reports/evaluation.json,
    reports/evaluation.html and monitoring/alerts.yaml. If a metric alert fires and no passing candidate
    exists, raises the "underperforms" failure mode. A candidate (retrained model folder) is evaluated
    on the current rows it was not trained on, beside the monitored batch's figures.

    Args:
        model_path: Workspace-relative folder or artifact of the production model.
        reference_path: Reference CSV (what the model was validated on).
        current_path: The monitored batch CSV.
        label_column: Ground-truth column; empty to take it from the alignment/model metadata.
        segment_column: Column to slice bias metrics by; empty to take it from the alignment.
        candidate_path: Retrained candidate model folder to evaluate beside the production model.
    """
    alignment = read_json(ctx.workspace, ALIGNMENT_PATH) or None
    doc, ref, cur = evaluate(ctx, model_path=model_path, reference_path=reference_path,
                             current_path=current_path, label_column=label_column, segment_column=segment_column,
                             candidate_path=candidate_path, alignment=alignment)
    rules = doc.pop("rules", None)
    files = [EVALUATION_PATH, EVALUATION_HTML]
    ctx.write_text(EVALUATION_PATH, json.dumps(doc, indent=2), kind="report")
    ctx.write_text(EVALUATION_HTML, render_html(doc, ref, cur), kind="report")
    if rules:
        ctx.write_text(ALERTS_PATH, render_rules(rules), kind="config")
        files.append(ALERTS_PATH)
    if doc["status"] == "fail":
        failed = [a for a in doc["alerts"] if a["fired"] and a["name"].endswith("_drop")]
        ctx.signal("underperforms", "; ".join(f"{a['name']}: {a['value']} < {a['threshold']}" for a in failed),
                   alerts=failed, evaluation=EVALUATION_PATH)
    return json.dumps({
        "status": doc["status"], "files": files, "labelled": doc["labelled"],
        "alerts": [{k: a[k] for k in ("name", "fired", "value", "threshold")} for a in doc["alerts"]],
        "drifted": doc["drift"].get("drifted", []), "performance": doc["performance"],
        "bias": doc["bias"]["disparity"] if doc["bias"] else None,
        "candidate": None if not doc["candidate"] else {k: doc["candidate"].get(k) for k in ("path", "passes", "performance")},
        "selected_model": doc.get("selected_model"), "findings": doc["findings"],
    })
