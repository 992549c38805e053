"""Data alignment: pin the dataset versions, measure the baseline, and turn the mission's constraints
into acceptance thresholds. Persists ``reports/alignment.json``, which later steps read."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.data import fingerprint, profile_frame, read_table
from tools.ml.metrics import flags, min_positives_for_drop, performance, truth_flags
from tools.ml.model import file_sha256, locate_model

__all__ = ["Constraints", "parse_constraints", "propose_thresholds", "align", "align_data", "ALIGNMENT_PATH",
           "PSI_MODERATE", "PSI_SIGNIFICANT"]

ALIGNMENT_PATH = "reports/alignment.json"
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.2
_METRICS = ("precision", "recall", "f1", "accuracy", "roc_auc")
_DROP_RE = re.compile(r"\b(precision|recall|f1|accuracy|roc[_ ]?auc)\s+(?:drop|decrease|degradation|fall)s?\s*"
                      r"(?:of|by|above|over|more than|>=?|≥)?\s*(\d+(?:\.\d+)?)\s*%", re.I)
_WINDOW_RE = re.compile(r"within\s+(?:an?\s+)?(\d+(?:\.\d+)?)?[- ]?(hours?|hrs?|h|minutes?|mins?)\b", re.I)
_SCHEDULE_RE = re.compile(r"\b(nightly|daily|hourly|weekly)\b", re.I)
_LATENCY_RE = re.compile(r"latency\s*(?:<|under|below|of|within)?\s*(\d+(?:\.\d+)?)\s*ms", re.I)


@dataclass
class Constraints:
    """The mission's constraints, as numbers."""

    metric_drops: dict[str, float] = field(default_factory=dict)
    """Metric -> relative drop that must raise an alert (0.05 for "precision drop >5%")."""
    window_hours: float | None = None
    schedule: str | None = None
    latency_ms: float | None = None
    unparsed: list[str] = field(default_factory=list)


def parse_constraints(texts: list[str]) -> Constraints:
    """Read metric-drop alerts, run windows, schedules and latency budgets out of constraint sentences."""
    out = Constraints()
    for text in texts:
        matched = False
        for metric, pct in _DROP_RE.findall(text):
            out.metric_drops[metric.lower().replace(" ", "_").replace("rocauc", "roc_auc")] = float(pct) / 100
            matched = True
        if m := _WINDOW_RE.search(text):
            amount = float(m.group(1) or 1)
            out.window_hours = amount / 60 if m.group(2).lower().startswith("m") else amount
            matched = True
        if m := _SCHEDULE_RE.search(text):
            out.schedule = m.group(1).lower()
            matched = True
        if m := _LATENCY_RE.search(text):
            out.latency_ms = float(m.group(1))
            matched = True
        if not matched:
            out.unparsed.append(text)
    return out


def propose_thresholds(baseline: dict[str, Any] | None, constraints: Constraints) -> dict[str, Any]:
    """Acceptance thresholds: metric floors from the constraints, PSI levels, and the alert-rate fallback."""
    drops = dict(constraints.metric_drops) or {"precision": 0.05}
    out: dict[str, Any] = {
        "psi": {"moderate": PSI_MODERATE, "significant": PSI_SIGNIFICANT, "bins": 10,
                "alert_when": "psi >= significant on any feature"},
        "metrics": {}, "source": "mission constraints" if constraints.metric_drops else "default (5% precision drop)",
    }
    rate = (baseline or {}).get("alert_rate")
    for metric, drop in drops.items():
        base = (baseline or {}).get(metric)
        entry: dict[str, Any] = {"relative_drop": drop, "baseline": base}
        if base is not None:
            entry["floor"] = round(base * (1 - drop), 6)
            if metric == "precision":
                positives = min_positives_for_drop(base, drop)
                entry["min_predicted_positives"] = positives
                entry["min_labelled_rows"] = int(math.ceil(positives / rate)) if rate else None
                entry["why_min"] = ("one-sided 95% test: the drop must exceed 1.645 standard errors of precision "
                                    "measured on that many alerts")
        out["metrics"][metric] = entry
    if rate is not None:
        drop = drops.get("precision", 0.05)
        # With a stable number of true anomalies, precision falling by d shows as the alert rate rising to rate/(1-d).
        out["alert_rate"] = {"baseline": rate, "ceiling": round(rate / (1 - drop), 6),
                             "use_when": "the scored batch has no labels"}
    return out


def _finding(severity: str, title: str, detail: str) -> dict[str, str]:
    return {"severity": severity, "title": title, "detail": detail}


def align(ctx: ToolContext, *, model_path: str, reference_path: str, current_path: str = "",
          constraints: list[str] | None = None, label_column: str = "", segment_column: str = "") -> dict[str, Any]:
    """Profile and fingerprint the data, describe the model, measure the baseline and propose thresholds.

    Raises ``UnusableInput`` (:class:`~tools.ml.errors.ModelError` / :class:`~tools.ml.errors.DataError`)
    when the model or a dataset cannot be used.
    """
    workspace = ctx.workspace
    findings: list[dict[str, str]] = []
    parsed = parse_constraints(constraints or [])
    out: dict[str, Any] = {"constraints": asdict(parsed), "datasets": {}, "profiles": {}, "baseline": None,
                           "label_column": label_column or None, "segment_column": segment_column or None}
    ref_model = locate_model(workspace, model_path)
    paths = {role: path for role, path in (("reference", reference_path), ("current", current_path)) if path}
    frames = {role: read_table(workspace, path) for role, path in paths.items()}
    # One sandbox call: the model loaded and scored on every dataset (which also checks their columns).
    scored = sandboxed.predict(ctx, models={"model": ref_model}, data=paths,
                               jobs=[{"model": "model", "data": role} for role in paths])
    info = scored.models["model"]
    out["model"] = {**info.public(), "sha256": file_sha256(workspace / info.artifact)}
    findings += [_finding("medium", "pickle-based model", w) for w in info.warnings]
    label = label_column or info.label_column or ""
    out["label_column"] = label or None
    for role, frame in frames.items():
        path = paths[role]
        out["datasets"][role] = fingerprint(workspace, path)
        prof = profile_frame(frame)
        out["profiles"][role] = {"rows": prof["rows"], "columns": prof["columns"],
                                 "missing_cells": sum(c["missing"] for c in prof["columns"])}
        if label and label not in frame.columns:
            findings.append(_finding("medium", f"no labels in {role} data",
                                     f"{path!r} has no {label!r} column: precision cannot be measured there; "
                                     "monitoring falls back to the alert rate"))
        if segment_column and segment_column not in frame.columns:
            findings.append(_finding("low", "segment column absent", f"{path!r} has no {segment_column!r} column"))
    ref = frames.get("reference")
    if ref is not None:
        pred = flags(info, scored.get("model", "reference"))
        if label and label in ref.columns:
            truth = truth_flags(info, ref[label], path=reference_path)
            out["baseline"] = performance(truth, pred, scored.get("model", "reference").score)
        else:
            out["baseline"] = {"rows": int(len(ref)), "alert_rate": round(float(pred.mean()), 6)}
    out["labelled"] = bool(label) and all(label in f.columns for f in frames.values()) and bool(frames)
    out["thresholds"] = propose_thresholds(out["baseline"], parsed)
    out["findings"] = findings
    out["status"] = "ok"
    return out


@tool(parse_docstring=True)
def align_data(model_path: str, reference_path: str, current_path: str = "", constraints: list[str] | None = None,
               label_column: str = "", segment_column: str = "", *,
               ctx: Ctx) -> str:
    """Align on data and acceptance thresholds: profile and fingerprint datasets, inspect the model,
    compute baseline metrics on labelled reference data, and derive thresholds from the constraints
    (e.g. "alert on precision drop >5%" gives precision floor = baseline x 0.95 and the minimum labelled
    rows a window needs). Writes reports/alignment.json. A model or dataset that cannot be used is an error
    naming the file and the fix; lesser problems come back as findings.

    Args:
        model_path: Workspace-relative model folder or artifact.
        reference_path: Labelled reference CSV (what the model was validated on).
        current_path: The batch to be scored/monitored, if any.
        constraints: The mission's constraint sentences.
        label_column: Ground-truth column (taken from model.yaml when empty).
        segment_column: Column to slice bias metrics by, if any.
    """
    result = align(ctx, model_path=model_path, reference_path=reference_path, current_path=current_path,
                   constraints=constraints, label_column=label_column, segment_column=segment_column)
    ctx.write_text(ALIGNMENT_PATH, json.dumps(result, indent=2), kind="report")
    precision = result["thresholds"]["metrics"].get("precision", {})
    return json.dumps({
        "status": result["status"], "path": ALIGNMENT_PATH, "labelled": result["labelled"],
        "model": {k: result.get("model", {}).get(k) for k in ("name", "version", "format", "kind", "sha256")},
        "datasets": {k: {"sha256": v["sha256"], "rows": v["rows"]} for k, v in result["datasets"].items()},
        "baseline": result["baseline"], "precision_floor": precision.get("floor"),
        "min_labelled_rows": precision.get("min_labelled_rows"),
        "alert_rate_ceiling": (result["thresholds"].get("alert_rate") or {}).get("ceiling"),
        "window_hours": result["constraints"]["window_hours"], "findings": result["findings"],
    })
