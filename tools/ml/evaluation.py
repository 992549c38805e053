"""Evaluation of the monitored batch: performance for the model's kind, drift, bias and alerts, written as
``reports/evaluation.json`` (stable schema), ``reports/evaluation.html`` and ``monitoring/alerts.yaml``.

The current data is one file or a folder of batches; with batches, each one is profiled and checked for
drift under its name (``history``) and the latest is evaluated in full. One sandbox call scores the
reference, every batch and a retrained candidate's held-out rows; every figure is computed here from them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet
from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.alignment import ALIGNMENT_PATH, align, mission_constraints
from tools.ml.dashboard import record_evaluation
from tools.ml.data import batch_files, fingerprint, profile_frame, read_json, read_table
from tools.ml.drift import drift_table
from tools.ml.fairness import bias_report, sensitive_features
from tools.ml.metrics import Outcome, Z_ONE_SIDED_95, figures, flags, outcome, unlabelled_figures
from tools.ml.model import ModelInfo, file_sha256, locate_model
from tools.ml.monitoring import ALERTS_PATH, alert_rules, render_rules
from tools.ml.report import render_html
from tools.ml.rules import alert, check_metrics
from tools.ml.serving import LOAD_TEST_PATH
from tools.workspace import resolve_in_workspace

__all__ = ["evaluate", "evaluate_model", "EVALUATION_PATH", "EVALUATION_HTML", "SCHEMA_VERSION"]

EVALUATION_PATH = "reports/evaluation.json"
EVALUATION_HTML = "reports/evaluation.html"
SCHEMA_VERSION = 2


def _batches(ctx: ToolContext, current_path: str) -> list[str]:
    """The batches to look at, oldest first: a folder's files, or a file's earlier siblings in ``batches/``."""
    target = resolve_in_workspace(ctx.workspace, current_path)
    if target.is_dir():
        return batch_files(ctx.workspace, current_path)
    if target.parent.name == "batches":
        folder = target.parent.relative_to(ctx.workspace.resolve()).as_posix()
        files = batch_files(ctx.workspace, folder)
        if current_path in files:
            return files[: files.index(current_path) + 1]
    return [current_path]


def _drift_alert(drift: dict[str, Any]) -> dict[str, Any]:
    max_psi = max((f["psi"] for f in drift["features"]), default=0.0)
    enough = min(drift["reference_rows"], drift["current_rows"]) >= 10 * drift["bins"]
    return alert("feature_drift", metric_name="psi", direction="above", threshold=drift["significant"],
                 value=max_psi, fired=bool(drift["drifted"]), sample_sufficient=enough, category="drift",
                 features=drift["drifted"])


def _alert_rate_alert(thresholds: dict[str, Any], pred: np.ndarray) -> list[dict[str, Any]]:
    rate = thresholds.get("alert_rate")
    if not rate:
        return []
    value = round(float(pred.mean()), 6)
    ceiling = rate["ceiling"]
    # Fire only when the excess over the ceiling is beyond sampling noise for this batch size.
    limit = round(ceiling + Z_ONE_SIDED_95 * math.sqrt(ceiling * (1 - ceiling) / max(len(pred), 1)), 6)
    return [alert("alert_rate", metric_name="alert_rate", direction="above", threshold=limit, value=value,
                  fired=value > limit, sample_sufficient=True, category="fallback", ceiling=ceiling,
                  baseline=rate["baseline"], note="no labels: the alert rate stands in for precision")]


def _other_rules(cs: ConstraintSet, load_test: dict[str, Any]) -> list[dict[str, Any]]:
    """Rules a batch evaluation cannot measure (latency): the service's load test measured them when it ran
    (``reports/load-test.json``), else they are listed, marked not measured."""
    out = []
    latency = load_test.get("latency_ms") or {}
    for r in cs.alerts:
        if not r.metric.startswith("latency"):
            continue
        value = latency.get(r.metric.removeprefix("latency_").removesuffix("_ms"))
        common = {"metric_name": r.metric, "direction": r.direction, "threshold": r.threshold, "category": "service",
                  "rule": r.source_text}
        if value is None or r.threshold is None:
            out.append(alert(r.name, value=None, fired=False, sample_sufficient=False, measured=False, **common,
                             note="measured by the service's load test, not by the batch evaluation"
                                  + ("" if load_test else " (no load test has run)")))
            continue
        requests = int(load_test.get("requests") or 0)
        out.append(alert(r.name, value=value, fired=bool(r.fires(value)), measured=True, requests=requests,
                         # a p95 needs some requests above it to be more than the slowest one or two
                         sample_sufficient=requests >= 100, source=LOAD_TEST_PATH, **common))
    return out


def _predictions(info: ModelInfo, scores: sandboxed.Scores) -> np.ndarray:
    """The 0/1 flags (detectors, binary) used for the alert rate; empty for other kinds."""
    return flags(info, scores) if info.kind in ("anomaly", "binary") else np.zeros(0)


def _candidate(ctx: ToolContext, path: str, scored: sandboxed.Predictions, holdout: dict[str, int], current: str,
               frame: pd.DataFrame, production: ModelInfo, label: str, thresholds: dict[str, Any]) -> dict[str, Any]:
    if "candidate" in scored.failed:
        return {"path": path, "error": scored.failed["candidate"], "passes": False}
    cand = scored.models["candidate"]
    mask = (np.arange(len(frame)) % int(holdout["modulo"])) == int(holdout["remainder"])
    rows = frame[mask]
    cand_outcome = outcome(cand, scored.get("candidate", "latest"), rows[label], path=current)
    prod_scores = scored.get("model", "latest")
    prod_outcome = outcome(production, sandboxed.Scores(
        rows=int(mask.sum()), pred=prod_scores.pred[mask],
        proba=None if prod_scores.proba is None else prod_scores.proba[mask],
        score=None if prod_scores.score is None else prod_scores.score[mask]), rows[label], path=current)
    cand_figures = figures(cand_outcome)
    alerts = check_metrics(thresholds, cand_outcome, cand_figures)
    return {"path": path, "version": cand.version, "sha256": file_sha256(ctx.workspace / cand.artifact),
            "holdout": {**holdout, "rows": int(mask.sum()), "data": "current batch rows not used for training"},
            "performance": cand_figures, "production_on_holdout": figures(prod_outcome), "alerts": alerts,
            "passes": not any(a["fired"] for a in alerts)}


def evaluate(ctx: ToolContext, *, model_path: str, reference_path: str, current_path: str, label_column: str = "",
             segment_column: str = "", candidate_path: str = "", alignment: dict[str, Any] | None = None,
             constraints: list[str] | None = None) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The evaluation document, plus the reference and latest batch frames (for the plots).

    Raises ``UnusableInput`` when the model or the data cannot be used.
    """
    workspace = ctx.workspace
    if alignment is None:
        alignment = align(ctx, model_path=model_path, reference_path=reference_path, current_path=current_path,
                          constraints=constraints, label_column=label_column, segment_column=segment_column)
    cs = ConstraintSet.model_validate(alignment["constraint_set"]) if alignment.get("constraint_set") \
        else mission_constraints(ctx, constraints)
    thresholds = alignment.get("thresholds") or {}
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "model": None, "datasets": {}, "labelled": False,
                           "performance": {}, "drift": {"features": [], "drifted": []}, "bias": None, "alerts": [],
                           "thresholds": thresholds, "candidate": None, "history": [], "findings": []}
    findings = out["findings"]
    production = locate_model(workspace, model_path)
    batches = _batches(ctx, current_path)
    latest = batches[-1]
    ref = read_table(workspace, reference_path)
    frames = {path: read_table(workspace, path) for path in batches}
    cur = frames[latest]
    label = label_column or alignment.get("label_column") or production.metadata.get("label_column") or ""
    data = {"reference": reference_path, **{f"batch{i}": path for i, path in enumerate(batches[:-1])},
            "latest": latest}
    jobs = [{"model": "model", "data": name} for name in data]
    models = {"model": production}
    holdout: dict[str, int] = {}
    if candidate_path and label and label in cur.columns:
        candidate = locate_model(workspace, candidate_path)
        holdout = (candidate.metadata.get("evaluation") or {}).get("holdout") or {"modulo": 1, "remainder": 0}
        holdout = {"modulo": int(holdout["modulo"]), "remainder": int(holdout["remainder"])}
        models["candidate"] = candidate
        jobs.append({"model": "candidate", "data": "latest", "rows": holdout})  # judged on the latest batch
    scored = sandboxed.predict(ctx, models=models, data=data, jobs=jobs, optional=("candidate",))
    model = scored.models["model"]
    out["model"] = {**model.public(), "sha256": file_sha256(workspace / model.artifact)}
    out["datasets"] = {"reference": fingerprint(workspace, reference_path), "current": fingerprint(workspace, latest)}
    label = label or model.label_column or ""
    psi = thresholds.get("psi") or {}
    bins, significant = int(psi.get("bins", 10)), float(psi.get("significant", 0.2))

    ref_scores, cur_scores = scored.get("model", "reference"), scored.get("model", "latest")
    ref_outcome = outcome(model, ref_scores, ref[label], path=reference_path) if label in ref.columns else None
    cur_outcome = outcome(model, cur_scores, cur[label], path=latest) if label and label in cur.columns else None
    cur_figures = figures(cur_outcome) if cur_outcome is not None else None
    out["labelled"] = cur_outcome is not None
    out["performance"] = {"reference": figures(ref_outcome) if ref_outcome is not None else None,
                          "current": cur_figures or unlabelled_figures(model, cur_scores)}
    if cur_outcome is None:
        findings.append({"severity": "medium", "title": "no labels in the current batch",
                         "detail": f"no {label or 'label'!r} column in {latest!r}: the {model.kind} metrics cannot be "
                                   "measured" + ("; monitoring falls back to the alert rate"
                                                 if model.kind in ("anomaly", "binary") else "")})
    for i, path in enumerate(batches[:-1]):
        frame, scores = frames[path], scored.get("model", f"batch{i}")
        out["history"].append(_batch_entry(workspace, path, frame, ref, model, scores, label, bins, significant))
    out["drift"] = drift_table(ref, cur, model.features, bins=bins, alert_at=significant)
    if len(batches) > 1:
        out["history"].append(_batch_entry(workspace, latest, cur, ref, model, cur_scores, label, bins, significant,
                                           drift=out["drift"]))
    out["batches"] = {"count": len(batches), "latest": latest, "folder": str(Path(latest).parent)} \
        if len(batches) > 1 else None

    out["alerts"].append(_drift_alert(out["drift"]))
    out["alerts"] += check_metrics(thresholds, cur_outcome, cur_figures)
    pred = _predictions(model, cur_scores)
    if cur_outcome is None:
        out["alerts"] += _alert_rate_alert(thresholds, pred)
    out["alerts"] += _other_rules(cs, read_json(workspace, LOAD_TEST_PATH))

    features, bias_findings = sensitive_features(cs, model, segment_column=segment_column
                                                 or alignment.get("segment_column") or "", columns=list(cur.columns))
    findings += bias_findings
    if features:
        o = cur_outcome or Outcome(kind=model.kind, truth=np.zeros(0), pred=cur_scores.pred if model.kind not in (
            "anomaly", "binary") else pred, classes=tuple(model.classes or ()))
        threshold = float((thresholds.get("bias") or {}).get("threshold") or 0.8)
        out["bias"] = bias_report(o, cur, features, labelled=cur_outcome is not None, threshold=threshold)
        worst = out["bias"]["worst"]
        small = any(not g["sample_sufficient"] for g in out["bias"]["groups"])
        out["alerts"].append(alert("bias_disparity", metric_name=f"{worst['metric']}_ratio" if worst else
                                   "disparity_ratio", direction="below", threshold=threshold,
                                   value=worst["ratio"] if worst else None, fired=not out["bias"]["passes"],
                                   sample_sufficient=worst is not None and not small, category="bias",
                                   feature=worst["feature"] if worst else None))
    if "candidate" in models:
        out["candidate"] = _candidate(ctx, candidate_path, scored, holdout, latest, cur, model, label, thresholds)
    metric_fired = [a["name"] for a in out["alerts"] if a["fired"] and a["category"] == "metric"]
    candidate_ok = bool(out["candidate"] and out["candidate"]["passes"])
    out["selected_model"] = out["candidate"]["path"] if candidate_ok else model_path
    out["status"] = "pass" if not metric_fired else ("candidate_passes" if candidate_ok else "fail")
    out["fired"] = [a["name"] for a in out["alerts"] if a["fired"]]
    out["rules"] = alert_rules(alignment, features=model.features, reference_path=reference_path,
                               segment_column=",".join(features) if out["bias"] else None)
    return out, ref, cur


def _batch_entry(workspace: Path, path: str, frame: pd.DataFrame, ref: pd.DataFrame, model: ModelInfo,
                 scores: sandboxed.Scores, label: str, bins: int, significant: float,
                 drift: dict[str, Any] | None = None) -> dict[str, Any]:
    """One batch of a folder: its profile, drift against the reference and headline figures, under its name."""
    drift = drift or drift_table(ref, frame, model.features, bins=bins, alert_at=significant)
    prof = profile_frame(frame)
    labelled = bool(label) and label in frame.columns
    perf = figures(outcome(model, scores, frame[label], path=path)) if labelled else unlabelled_figures(model, scores)
    return {"name": Path(path).stem, "path": path, "sha256": fingerprint(workspace, path)["sha256"],
            "rows": prof["rows"], "missing_cells": sum(c["missing"] for c in prof["columns"]),
            "drifted": drift["drifted"], "max_psi": max((f["psi"] for f in drift["features"]), default=0.0),
            "labelled": labelled, "performance": {k: v for k, v in perf.items() if k != "per_class"},
            "drift": {f["name"]: {k: f.get(k) for k in ("psi", "test", "p_value", "drifted")}
                      for f in drift["features"]}}  # per feature, for the monitoring history


@tool(parse_docstring=True)
def evaluate_model(model_path: str, reference_path: str, current_path: str, label_column: str = "",
                   segment_column: str = "", candidate_path: str = "", *,
                   ctx: Ctx) -> str:
    """Evaluate the model on the current batch against the reference: performance for its kind (binary,
    multiclass, regression, anomaly; when labelled), per-feature drift (PSI on reference-quantile bins,
    KS/chi2 beside it), bias per sensitive group when asked (fairlearn), and every alert rule agreed in
    reports/alignment.json. With a batch folder, each batch is profiled and drift-checked and the latest is
    evaluated. Writes reports/evaluation.json, reports/evaluation.html and monitoring/alerts.yaml. If a
    metric alert fires and no passing candidate exists, raises the "underperforms" failure mode. A
    candidate (retrained model folder) is evaluated on the current rows it was not trained on.

    Args:
        model_path: Workspace-relative folder or artifact of the production model.
        reference_path: Reference data, CSV or Parquet (what the model was validated on).
        current_path: The monitored batch (CSV or Parquet), or a folder of batches (the latest is evaluated).
        label_column: Ground-truth column; empty to take it from the alignment/model metadata.
        segment_column: Column to slice bias metrics by; empty to take it from the alignment/mission.
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
    files += record_evaluation(ctx, doc)["files"]  # one history row per batch; the dashboard redrawn
    if doc["status"] == "fail":
        failed = [a for a in doc["alerts"] if a["fired"] and a["category"] == "metric"]
        ctx.signal("underperforms", "; ".join(f"{a['name']}: {a['value']} {'<' if a['direction'] == 'below' else '>'} "
                                               f"{a['threshold']}" for a in failed),
                   alerts=failed, evaluation=EVALUATION_PATH)
    bias = doc["bias"]
    return json.dumps({
        "status": doc["status"], "files": files, "labelled": doc["labelled"], "kind": doc["model"]["kind"],
        "alerts": [{k: a.get(k) for k in ("name", "metric", "direction", "fired", "value", "threshold",
                                          "sample_sufficient")} for a in doc["alerts"]],
        "drifted": doc["drift"].get("drifted", []), "performance": doc["performance"],
        "bias": None if not bias else {"sensitive_features": bias["sensitive_features"], "passes": bias["passes"],
                                       **{f"worst_{k}": (bias["worst"] or {}).get(k)
                                          for k in ("metric", "ratio", "difference", "feature")}},
        "history": [{k: h[k] for k in ("name", "rows", "drifted", "max_psi")} for h in doc["history"]],
        "candidate": None if not doc["candidate"] else {k: doc["candidate"].get(k) for k in ("path", "passes", "performance")},
        "selected_model": doc.get("selected_model"), "findings": doc["findings"],
    })
