"""Offline/online validation of a candidate: a shadow comparison with the production model on the same rows.

Both models score the latest batch in one sandbox call (the rows the candidate was not trained on, when it was
trained on part of that batch), each timed there: the whole batch in one call and one call per row for
per-request latency. The host computes the rest from the predictions: how often the two agree, each metric's
difference with a paired bootstrap interval, and the promotion decision the mission's thresholds drive:

1. every metric rule agreed at alignment holds for the candidate on these rows;
2. every rule production breaks on these rows, the candidate fixes beyond sampling noise (the interval of the
   difference lies on the better side);
3. no other monitored metric is worse beyond sampling noise;
4. the candidate's per-row latency is within every latency target the mission states.

All hold: ``promote`` (go on to canary); else ``hold`` (keep production), with the gates that failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.alignment import ALIGNMENT_PATH, mission_constraints
from tools.ml.data import batch_files, read_json, read_table
from tools.ml.errors import DataError
from tools.ml.metrics import Outcome, figures, flags, metric, outcome
from tools.ml.model import file_sha256, locate_model, model_info
from tools.ml.rules import check_metrics
from tools.ml.sampling import paired_delta_interval
from tools.workspace import resolve_in_workspace

__all__ = ["SHADOW_PATH", "compare", "compare_shadow", "shadow_summary", "agreement_text", "LOWER_IS_BETTER"]

SHADOW_PATH = "reports/shadow-comparison.json"
LOWER_IS_BETTER = frozenset({"mae", "mse", "rmse", "mape", "log_loss", "error_rate", "false_positive_rate",
                             "false_negative_rate", "alert_rate"})
_HEADLINE = {"anomaly": ("precision", "recall"), "binary": ("precision", "recall"),
             "multiclass": ("accuracy", "f1_macro"), "regression": ("mae",)}
_SINGLE_ROWS = 20
"""Rows scored one call each for per-request latency (a detector's one-row call costs milliseconds)."""


def _latest(ctx: ToolContext, current_path: str) -> str:
    target = resolve_in_workspace(ctx.workspace, current_path)
    if target.is_dir():
        files = batch_files(ctx.workspace, current_path)
        if not files:
            raise DataError(f"the batch folder {current_path!r} holds no data file", path=current_path,
                            fix="put the batches (CSV or Parquet) in the folder")
        return files[-1]
    return current_path


def _latency(raw: Any, rows: int, batch_seconds: float) -> dict[str, Any]:
    times = sandboxed.decode(raw)
    times = np.zeros(0) if times is None else times
    out: dict[str, Any] = {"single_row_calls": int(len(times)), "batch_rows": rows,
                           "batch_seconds": round(batch_seconds, 6),
                           "rows_per_second": round(rows / batch_seconds, 1) if batch_seconds > 0 else None}
    if len(times):
        out.update({f"p{q}_ms": round(float(np.percentile(times, q)), 3) for q in (50, 95, 99)})
        out.update(mean_ms=round(float(times.mean()), 3), max_ms=round(float(times.max()), 3))
    return out


def _agreement(kind: str, prod: Any, cand: Any, prod_info: Any, cand_info: Any) -> dict[str, Any]:
    if kind in ("anomaly", "binary"):
        same = flags(prod_info, prod) == flags(cand_info, cand)
        return {"rate": round(float(same.mean()), 6), "rows_differing": int((~same).sum()), "compared": "flags"}
    if kind == "multiclass":
        labels = lambda info, s: np.array([str((info.classes or [])[i]) if 0 <= i < len(info.classes or []) else "?"
                                           for i in s.pred])  # noqa: E731
        same = labels(prod_info, prod) == labels(cand_info, cand)
        return {"rate": round(float(same.mean()), 6), "rows_differing": int((~same).sum()), "compared": "classes"}
    diff = np.abs(prod.pred.astype(float) - cand.pred.astype(float))
    return {"rate": None, "mean_abs_difference": round(float(diff.mean()), 6),
            "correlation": round(float(np.corrcoef(prod.pred, cand.pred)[0, 1]), 6) if len(diff) > 1 else None,
            "compared": "values"}


def agreement_text(agreement: dict[str, Any] | None) -> str:
    """How the two models' outputs agree, in words: a rate for classes and flags, the mean absolute difference
    (and correlation) for a regressor's values."""
    agreement = agreement or {}
    if agreement.get("rate") is not None:
        return f"agreement {agreement['rate']}"
    if agreement.get("mean_abs_difference") is not None:
        return (f"mean absolute difference {agreement['mean_abs_difference']} (correlation "
                f"{agreement.get('correlation')})")
    return "agreement not computed"


def _span(entry: dict[str, Any]) -> str:
    interval = entry.get("interval") or {}
    inside = f" (95% interval [{interval['low']:+.4f}, {interval['high']:+.4f}])" if interval else ""
    return f"{entry.get('production')} -> {entry.get('candidate')}, difference {entry.get('delta'):+.4f}{inside}" \
        if entry else "not computed"


def _worse_side(name: str, interval: Any) -> bool:
    """The whole interval of candidate - production says the candidate is worse."""
    return interval is not None and (interval.low > 0 if name in LOWER_IS_BETTER else interval.high < 0)


def _better_side(name: str, interval: Any) -> bool:
    return interval is not None and (interval.high < 0 if name in LOWER_IS_BETTER else interval.low > 0)


def compare(ctx: ToolContext, *, model_path: str, candidate_path: str, current_path: str, label_column: str = "",
            constraints: list[str] | None = None) -> dict[str, Any]:
    """The shadow comparison document (see the module's docstring). Raises ``UnusableInput`` for a model or
    data that cannot be used."""
    workspace = ctx.workspace
    production, candidate = locate_model(workspace, model_path), locate_model(workspace, candidate_path)
    latest = _latest(ctx, current_path)
    holdout = (candidate.metadata.get("evaluation") or {}).get("holdout")
    trained_here = str((candidate.metadata.get("evaluation") or {}).get("data") or "") == latest
    rows_spec = {"modulo": int(holdout["modulo"]), "remainder": int(holdout["remainder"])} \
        if holdout and trained_here else None
    answer = sandboxed.ask(ctx, "shadow", {"models": {"production": production.spec(), "candidate": candidate.spec()},
                                           "data": latest, "rows": rows_spec, "single_rows": _SINGLE_ROWS},
                           refs=[production, candidate], paths=[latest])
    rows = int(answer["rows"])
    results = answer["results"]
    infos = {"production": model_info(production, results["production"]["model"]),
             "candidate": model_info(candidate, results["candidate"]["model"])}
    scores = {name: sandboxed.scores_of(results[name], rows) for name in infos}
    kind = infos["production"].kind
    frame = read_table(workspace, latest)
    if rows_spec:
        frame = frame[(np.arange(len(frame)) % rows_spec["modulo"]) == rows_spec["remainder"]]
    alignment = read_json(workspace, ALIGNMENT_PATH)
    thresholds = alignment.get("thresholds") or {}
    label = label_column or alignment.get("label_column") or infos["production"].label_column or ""
    out: dict[str, Any] = {
        "data": {"path": latest, "rows": rows,
                 "which": (f"the {rows} rows of {latest} the candidate was not trained on (row index % "
                           f"{rows_spec['modulo']} == {rows_spec['remainder']})") if rows_spec else
                 f"every row of {latest}"},
        "production": {"path": model_path, "version": infos["production"].version,
                       "sha256": file_sha256(workspace / infos["production"].artifact)},
        "candidate": {"path": candidate_path, "version": infos["candidate"].version,
                      "sha256": file_sha256(workspace / infos["candidate"].artifact)},
        "kind": kind, "agreement": _agreement(kind, scores["production"], scores["candidate"], infos["production"],
                                              infos["candidate"]),
        "latency": {name: _latency(results[name]["single_row_ms"], rows, float(results[name]["batch_seconds"]))
                    for name in infos},
        "latency_method": "in the sandbox: one predict call on all rows, and one call per row on the first "
                          f"{min(_SINGLE_ROWS, rows)} rows (input conversion included), after a warm-up call",
        "labelled": bool(label) and label in frame.columns, "metrics": {}, "gates": [],
    }
    cs = mission_constraints(ctx, constraints)
    gates = out["gates"]
    if out["labelled"]:
        outcomes: dict[str, Outcome] = {name: outcome(infos[name], scores[name], frame[label], path=latest)
                                        for name in infos}
        monitored = list((thresholds.get("metrics") or {}).keys())
        names = list(dict.fromkeys([*monitored, *_HEADLINE.get(kind, ())]))
        for name in names:
            try:
                values = {who: round(float(metric(name, o)), 6) for who, o in outcomes.items()}
            except (KeyError, ValueError):
                continue
            interval = paired_delta_interval(name, outcomes["candidate"], outcomes["production"])
            out["metrics"][name] = {
                **values, "delta": round(values["candidate"] - values["production"], 6),
                "interval": interval.as_dict() if interval else None, "monitored": name in monitored,
                "better": "lower" if name in LOWER_IS_BETTER else "higher"}
        cand_alerts = check_metrics(thresholds, outcomes["candidate"], figures(outcomes["candidate"]))
        prod_alerts = {a["name"]: a for a in check_metrics(thresholds, outcomes["production"],
                                                           figures(outcomes["production"]))}
        for a in cand_alerts:
            gates.append({"gate": f"{a['name']} holds for the candidate", "passed": not a["fired"],
                          "detail": f"candidate {a['metric']} {a['value']} vs threshold {a['threshold']}"
                                    + ("" if a.get("sample_sufficient") else " (few rows: noisy)")})
            entry = out["metrics"].get(a["metric"]) or {}
            interval = paired_delta_interval(a["metric"], outcomes["candidate"], outcomes["production"])
            if prod_alerts.get(a["name"], {}).get("fired"):
                gates.append({"gate": f"the candidate fixes {a['name']} beyond sampling noise",
                              "passed": _better_side(a["metric"], interval),
                              "detail": f"{a['metric']} {_span(entry)}"})
            else:
                gates.append({"gate": f"{a['metric']} no worse beyond sampling noise",
                              "passed": not _worse_side(a["metric"], interval),
                              "detail": f"{a['metric']} {_span(entry)}"})
        if not cand_alerts:
            gates.append({"gate": "a metric threshold agreed at alignment", "passed": False,
                          "detail": "no metric rule to judge the candidate by: agree thresholds first"})
    else:
        gates.append({"gate": "labelled shadow rows", "passed": False,
                      "detail": f"{latest} has no {label or 'label'!r} column: the candidate's metrics cannot be "
                                "compared; promotion needs a labelled window"})
    for target in cs.latency:
        key = f"{target.percentile}_ms"  # p50/p95/p99, mean or max
        measured = out["latency"]["candidate"].get(key)
        gates.append({"gate": f"{target.percentile} latency under {target.max_ms:g} ms ({target.source_text})",
                      "passed": measured is not None and measured <= target.max_ms,
                      "detail": f"candidate {measured} ms per row, production {out['latency']['production'].get(key)} ms"})
    if not cs.latency:
        out["latency_note"] = "the mission states no latency target: latency is reported, not a gate"
    failed = [g["gate"] for g in gates if not g["passed"]]
    out["decision"] = "promote" if gates and not failed else "hold"
    out["failed_gates"] = failed
    out["rule"] = ("promote when every metric rule agreed at alignment holds for the candidate on the shadow rows, "
                   "it fixes each rule production breaks there beyond sampling noise (95% paired bootstrap interval "
                   "of the difference on the better side), no monitored metric is worse beyond noise, and its "
                   "per-row latency meets each latency target of the mission")
    return out


@tool(parse_docstring=True)
def compare_shadow(model_path: str, candidate_path: str, current_path: str, label_column: str = "",
                   constraints: list[str] | None = None, *, ctx: Ctx) -> str:
    """Shadow comparison of a candidate model against the production model on the same rows of the latest
    batch (the rows the candidate was not trained on): agreement rate, each metric's difference with a 95%
    paired bootstrap interval, per-row and whole-batch latency of both measured in the sandbox, and the
    promotion decision (promote / hold) driven by the mission's thresholds. Writes
    reports/shadow-comparison.json.

    Args:
        model_path: Workspace-relative folder (or artifact) of the production model.
        candidate_path: Workspace-relative folder (or artifact) of the candidate, e.g. models/x-candidate.
        current_path: The latest batch (CSV or Parquet), or a folder of batches (the latest is used).
        label_column: Ground-truth column; empty to take it from the alignment or the model's metadata.
        constraints: The mission's constraint clauses; empty to use the mission's own.
    """
    doc = compare(ctx, model_path=model_path, candidate_path=candidate_path, current_path=current_path,
                  label_column=label_column, constraints=constraints)
    ctx.write_text(SHADOW_PATH, json.dumps(doc, indent=2), kind="report")
    return json.dumps({"status": "ok", "path": SHADOW_PATH, "decision": doc["decision"], "rows": doc["data"]["rows"],
                       "which_rows": doc["data"]["which"], "agreement": doc["agreement"], "metrics": doc["metrics"],
                       "latency": doc["latency"], "failed_gates": doc["failed_gates"],
                       "gates": [{k: g[k] for k in ("gate", "passed")} for g in doc["gates"]]})


def shadow_summary(workspace: Path) -> dict[str, Any]:
    """The recorded comparison (empty when none was run), for the deployment notes and the report."""
    return read_json(workspace, SHADOW_PATH)
