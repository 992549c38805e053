"""Data alignment: pin the dataset versions, measure the baseline, and turn the mission's constraints
into acceptance thresholds. Persists ``reports/alignment.json``, which later steps read.

The constraints are read once into a :class:`~orchestrator.constraints.ConstraintSet` (stored as
``constraint_set``) so that every later deliverable uses the same figures.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd

from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet, parse_constraints
from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.data import batch_files, fingerprint, profile_frame, read_table
from tools.ml.errors import DataError
from tools.ml.metrics import figures, outcome, unlabelled_figures
from tools.ml.model import ModelInfo, file_sha256, locate_model
from tools.ml.rules import PSI_MODERATE, PSI_SIGNIFICANT, propose_thresholds

__all__ = ["align", "align_data", "infer_label", "mission_constraints", "ALIGNMENT_PATH", "PSI_MODERATE", "PSI_SIGNIFICANT"]

ALIGNMENT_PATH = "reports/alignment.json"


def mission_constraints(ctx: ToolContext, clauses: list[str] | None) -> ConstraintSet:
    """The constraint set a tool works with: the mission's own (with its free text) when the clauses passed
    are its ``Constraints:`` items or nothing, else the clauses passed."""
    mission = ctx.mission
    if mission is not None and (not clauses or list(clauses) == list(mission.constraints)):
        return mission.constraint_set
    return parse_constraints([str(c) for c in clauses or []])


_NOT_A_LABEL = re.compile(r"(?:^|_)(?:id|uuid|key|ts|timestamp|time|date|datetime|created|updated)(?:$|_)", re.I)


def infer_label(info: ModelInfo, frame: pd.DataFrame | None) -> str | None:
    """The ground-truth column of a supervised model's data when nothing names it: the one column the model does
    not take as input (ids and times aside) whose values fit the model (a classifier's classes; numbers for a
    regressor). A sensitive attribute kept beside the features ('gender': F/M) does not fit a 0/1 classifier;
    None when no column fits or more than one does."""
    if frame is None or info.kind not in ("binary", "multiclass", "regression") or not info.features:
        return None
    classes = {str(c) for c in info.classes or []}

    def fits(column: str) -> bool:
        values = frame[column].dropna()
        if values.empty:
            return False
        if info.kind == "regression":
            return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        return bool(classes) and {str(v) for v in values.unique()} <= classes

    fitting = [str(c) for c in frame.columns if str(c) not in info.features and str(c) != info.id_column
               and not _NOT_A_LABEL.search(str(c)) and fits(c)]
    return fitting[0] if len(fitting) == 1 else None


def _finding(severity: str, title: str, detail: str) -> dict[str, str]:
    return {"severity": severity, "title": title, "detail": detail}


def _legacy_constraints(cs: ConstraintSet, thresholds: dict[str, Any]) -> dict[str, Any]:
    """The short form earlier reports carried (relative drops, window, schedule, latency, not understood)."""
    return {"metric_drops": {m: e["relative_drop"] for m, e in thresholds["metrics"].items() if "relative_drop" in e
                             and thresholds.get("source") == "mission constraints"},
            "window_hours": cs.window_seconds / 3600 if cs.window_seconds else None,
            "schedule": cs.schedule.text if cs.schedule else None,
            "latency_ms": cs.latency[0].max_ms if cs.latency else None, "unparsed": list(cs.not_understood)}


def align(ctx: ToolContext, *, model_path: str, reference_path: str, current_path: str = "",
          constraints: list[str] | None = None, label_column: str = "", segment_column: str = "") -> dict[str, Any]:
    """Profile and fingerprint the data, describe the model, measure the baseline and propose thresholds.

    ``current_path`` may be a batch folder (its latest batch is profiled). Raises ``UnusableInput``
    (:class:`~tools.ml.errors.ModelError` / :class:`~tools.ml.errors.DataError`) when the model or a dataset
    cannot be used.
    """
    workspace = ctx.workspace
    cs = mission_constraints(ctx, constraints)
    findings: list[dict[str, str]] = []
    ref_model = locate_model(workspace, model_path)
    current = batch_files(workspace, current_path)[-1] if current_path else ""
    paths = {role: path for role, path in (("reference", reference_path), ("current", current)) if path}
    frames = {role: read_table(workspace, path) for role, path in paths.items()}
    # One sandbox call: the model loaded and scored on every dataset (which also checks their columns).
    scored = sandboxed.predict(ctx, models={"model": ref_model}, data=paths,
                               jobs=[{"model": "model", "data": role} for role in paths])
    info = scored.models["model"]
    label = label_column or info.label_column or ""
    if not label and (inferred := infer_label(info, frames.get("reference", frames.get("current")))):
        label = inferred
        findings.append(_finding("low", "label column inferred",
                                 f"{label!r} is the one column of the data the model does not take as input, and "
                                 f"its values fit the model's {'values' if info.kind == 'regression' else 'classes'}: "
                                 "it is taken as the ground truth (name it in the mission or model.yaml to be sure)"))
    out: dict[str, Any] = {"constraint_set": cs.model_dump(mode="json"), "datasets": {}, "profiles": {},
                           "baseline": None, "label_column": label or None, "segment_column": segment_column or None,
                           "model": {**info.public(), "sha256": file_sha256(workspace / info.artifact)}}
    findings += [_finding("medium", "pickle-based model", w) for w in info.warnings]
    for role, frame in frames.items():
        path = paths[role]
        out["datasets"][role] = fingerprint(workspace, path)
        prof = profile_frame(frame)
        out["profiles"][role] = {"rows": prof["rows"], "columns": prof["columns"],
                                 "missing_cells": sum(c["missing"] for c in prof["columns"])}
        if label and label not in frame.columns:
            findings.append(_finding("medium", f"no labels in {role} data",
                                     f"{path!r} has no {label!r} column: the {info.kind} metrics cannot be measured "
                                     "there" + ("; monitoring falls back to the alert rate"
                                                if info.kind in ("anomaly", "binary") else "")))
        if segment_column and segment_column not in frame.columns:
            findings.append(_finding("low", "segment column absent", f"{path!r} has no {segment_column!r} column"))
    reference = None
    if "reference" in frames:
        ref, scores = frames["reference"], scored.get("model", "reference")
        if label and label in ref.columns:
            reference = outcome(info, scores, ref[label], path=reference_path)
            out["baseline"] = figures(reference)
        else:
            out["baseline"] = unlabelled_figures(info, scores)
    out["labelled"] = bool(label) and all(label in f.columns for f in frames.values()) and bool(frames)
    thresholds = propose_thresholds(cs, kind=info.kind, baseline=out["baseline"], reference=reference)
    named = [e["name"] for e in thresholds["metrics"].values()] if thresholds["source"] == "mission constraints" else []
    if named and "current" in frames and (not label or label not in frames["current"].columns):
        # The mission asks for a metric that needs labels: monitoring the alert rate instead would not be it.
        raise DataError(f"the monitored batch {current!r} has no label column ({label or 'none is known'!r}), and the "
                        f"mission's rule(s) {', '.join(named)} need labels to be measured", path=current,
                        fix=f"add the ground-truth column {label or '(the label)'} to {current}, or drop the metric "
                            "constraint from the mission (alert-rate monitoring then stands in)")
    out["thresholds"] = thresholds
    out["constraints"] = _legacy_constraints(cs, thresholds)
    findings += [_finding("medium", "constraint not checked", note) for note in thresholds["not_checked"]]
    findings += [_finding("medium", "constraint not understood", f"{text!r}: ask the user what it means")
                 for text in cs.not_understood]
    out["findings"] = findings
    out["status"] = "ok"
    return out


@tool(parse_docstring=True)
def align_data(model_path: str, reference_path: str, current_path: str = "", constraints: list[str] | None = None,
               label_column: str = "", segment_column: str = "", *,
               ctx: Ctx) -> str:
    """Align on data and acceptance thresholds: profile and fingerprint datasets, inspect the model (its
    kind: binary, multiclass, regression or anomaly), compute baseline metrics on labelled reference data,
    and derive a threshold for every metric rule of the constraints (e.g. "precision drop >5%" gives
    precision floor = baseline x 0.95 and the minimum labelled rows a window needs; "MAE rises more than
    10%" a ceiling). Writes reports/alignment.json. A model or dataset that cannot be used is an error
    naming the file and the fix; lesser problems come back as findings.

    Args:
        model_path: Workspace-relative model folder or artifact.
        reference_path: Labelled reference data, CSV or Parquet (what the model was validated on).
        current_path: The batch to be scored/monitored (a file, or a batch folder), if any.
        constraints: The mission's constraint sentences.
        label_column: Ground-truth column (taken from model.yaml when empty).
        segment_column: Column to slice bias metrics by, if any.
    """
    result = align(ctx, model_path=model_path, reference_path=reference_path, current_path=current_path,
                   constraints=constraints, label_column=label_column, segment_column=segment_column)
    ctx.write_text(ALIGNMENT_PATH, json.dumps(result, indent=2), kind="report")
    metrics = result["thresholds"]["metrics"]
    precision = metrics.get("precision", {})
    return json.dumps({
        "status": result["status"], "path": ALIGNMENT_PATH, "labelled": result["labelled"],
        "label_column": result["label_column"],
        "model": {k: result.get("model", {}).get(k) for k in ("name", "version", "format", "kind", "classes", "sha256")},
        "datasets": {k: {"sha256": v["sha256"], "rows": v["rows"]} for k, v in result["datasets"].items()},
        "baseline": result["baseline"], "precision_floor": precision.get("floor"),
        "min_labelled_rows": precision.get("min_labelled_rows"),
        "rules": {m: {k: e.get(k) for k in ("name", "direction", "baseline", "limit")} for m, e in metrics.items()},
        "alert_rate_ceiling": (result["thresholds"].get("alert_rate") or {}).get("ceiling"),
        "window_hours": result["constraints"]["window_hours"], "findings": result["findings"],
    })
