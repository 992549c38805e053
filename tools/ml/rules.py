"""Alert rules: the mission's metric thresholds (a :class:`~orchestrator.constraints.ConstraintSet`) turned
into limits against the reference baseline at alignment, and checked against a batch at evaluation.

Any metric the constraints name is honoured when the model's kind has it ("precision drop >5%", "MAE rises
more than 10%", "macro F1 below 0.8"); with none named, a kind's default applies (precision 5% drop for
detectors and binary classifiers, macro F1 5% drop for multiclass, MAE 10% rise for regressors). Every rule
checked becomes an entry of ``alerts[]``: name, metric, direction, threshold (the limit), value, fired and
sample_sufficient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from orchestrator.constraints import AlertRule, ConstraintSet
from tools.ml.metrics import HIGHER_IS_BETTER, Outcome, metric, min_positives_for_drop, resolve, supports
from tools.ml.sampling import bootstrap_interval, sufficient

__all__ = ["metric_rules", "propose_thresholds", "check_metrics", "alert", "PSI_MODERATE", "PSI_SIGNIFICANT",
           "FOUR_FIFTHS", "MIN_GROUP_ROWS"]

PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.2
FOUR_FIFTHS = 0.8
"""Disparity ratio below which a group is flagged (the four-fifths rule)."""
MIN_GROUP_ROWS = 30
"""Rows a group needs before its figures count towards a disparity."""
_DEFAULTS = {"anomaly": ("precision", 0.05), "binary": ("precision", 0.05), "multiclass": ("f1_macro", 0.05),
             "regression": ("mae", 0.10)}
_NOT_METRICS = ("psi", "disparity_ratio")


def _default_rule(kind: str) -> AlertRule:
    name, change = _DEFAULTS[kind]
    direction = "below" if name.split("_")[0] in HIGHER_IS_BETTER else "above"
    return AlertRule(name=f"{name}_{'drop' if direction == 'below' else 'rise'}", metric=name, direction=direction,
                     threshold=change, relative=True, source_text=f"default: {change:.0%} {direction} baseline")


def metric_rules(cs: ConstraintSet, kind: str) -> tuple[list[AlertRule], list[str], bool]:
    """The model-metric rules for a ``kind`` model: (rules, notes on rules it cannot check, default used)."""
    rules, notes = [], []
    for rule in cs.alerts:
        if rule.metric in _NOT_METRICS or rule.metric.startswith("latency"):
            continue
        name = resolve(kind, rule.metric)
        if not supports(kind, name):
            notes.append(f"{rule.source_text!r}: {rule.metric} is not a metric of a {kind} model; not checked")
            continue
        rules.append(rule.model_copy(update={"metric": name}) if name != rule.metric else rule)
    if not rules:
        return [_default_rule(kind)], notes, True
    return rules, notes, False


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def propose_thresholds(cs: ConstraintSet, *, kind: str, baseline: dict[str, Any] | None,
                       reference: Outcome | None) -> dict[str, Any]:
    """Acceptance thresholds: a limit per metric rule (from the labelled reference), PSI levels, the bias
    ratio, and the alert-rate fallback for unlabelled batches of detectors and binary classifiers."""
    rules, notes, default = metric_rules(cs, kind)
    drift = next((r for r in cs.alerts if r.metric == "psi"), None)
    bias = next((r for r in cs.alerts if r.metric == "disparity_ratio"), None)
    out: dict[str, Any] = {
        "psi": {"moderate": PSI_MODERATE, "significant": drift.threshold if drift and drift.threshold else
                PSI_SIGNIFICANT, "bins": 10, "alert_when": "psi >= significant on any feature"},
        "bias": {"threshold": bias.threshold if bias and bias.threshold else FOUR_FIFTHS,
                 "alert_when": "min/max ratio of a per-group metric < threshold"},
        "metrics": {}, "kind": kind, "not_checked": notes,
        "source": f"default ({rules[0].describe()})" if default else "mission constraints",
    }
    for rule in rules:
        if rule.metric in out["metrics"]:
            notes.append(f"{rule.source_text!r}: a second rule on {rule.metric}; the first one is kept")
            continue
        base = (baseline or {}).get(rule.metric)
        if base is None and reference is not None:
            base = _round(metric(rule.metric, reference))
        entry: dict[str, Any] = {"name": rule.name, "metric": rule.metric, "direction": rule.direction,
                                 "relative": rule.relative, "rule_threshold": rule.threshold, "baseline": base,
                                 "source_text": rule.source_text}
        if rule.relative:
            entry["relative_drop" if rule.direction == "below" else "relative_rise"] = rule.threshold
        limit = rule.limit(base)
        if limit is not None:
            entry["limit"] = round(limit, 6)
            entry["floor" if rule.direction == "below" else "ceiling"] = entry["limit"]
        if rule.metric == "precision" and kind in ("anomaly", "binary") and rule.relative and base:
            rate = (baseline or {}).get("alert_rate")
            positives = min_positives_for_drop(base, rule.threshold or 0.0)
            entry["min_predicted_positives"] = positives
            entry["min_labelled_rows"] = int(math.ceil(positives / rate)) if rate else None
            entry["why_min"] = ("one-sided 95% test: the drop must exceed 1.645 standard errors of precision "
                                "measured on that many alerts")
        out["metrics"][rule.metric] = entry
    rate = (baseline or {}).get("alert_rate")
    if rate is not None and kind in ("anomaly", "binary"):
        precision = out["metrics"].get("precision") or {}
        drop = precision.get("relative_drop") or 0.05
        # With a stable number of true anomalies, precision falling by d shows as the alert rate rising to rate/(1-d).
        out["alert_rate"] = {"baseline": rate, "ceiling": round(rate / (1 - drop), 6),
                             "use_when": "the scored batch has no labels"}
    return out


def alert(name: str, *, metric_name: str, direction: str, threshold: float | None, value: float | None,
          fired: bool, sample_sufficient: bool, category: str, **detail: Any) -> dict[str, Any]:
    """One entry of ``alerts[]``."""
    return {"name": name, "metric": metric_name, "direction": direction, "threshold": threshold, "value": value,
            "fired": bool(fired), "sample_sufficient": bool(sample_sufficient), "category": category, **detail}


def check_metrics(thresholds: dict[str, Any], current: Outcome | None, figures: dict[str, Any] | None
                  ) -> list[dict[str, Any]]:
    """Each metric rule against a labelled batch (``current``); without labels each says it was not measured."""
    out = []
    for metric_name, entry in (thresholds.get("metrics") or {}).items():
        limit = entry.get("limit")
        common = {"metric_name": metric_name, "direction": entry["direction"], "threshold": limit,
                  "category": "metric", "baseline": entry.get("baseline"), "rule": entry.get("source_text")}
        if current is None or limit is None:
            why = "the batch has no labels" if current is None else "no baseline (the reference has no labels)"
            out.append(alert(entry["name"], value=None, fired=False, sample_sufficient=False, measured=False,
                             note=f"not measured: {why}", **common))
            continue
        value = (figures or {}).get(metric_name)
        value = _round(metric(metric_name, current)) if not isinstance(value, (int, float)) else value
        if value is None:
            out.append(alert(entry["name"], value=None, fired=False, sample_sufficient=False, measured=False,
                             note=f"{metric_name} cannot be computed on this batch", **common))
            continue
        fired = value < limit if entry["direction"] == "below" else value > limit
        detail: dict[str, Any] = {}
        if "min_predicted_positives" in entry:
            enough = int(np.sum(current.pred)) >= (entry.get("min_predicted_positives") or 0)
        else:
            interval = bootstrap_interval(metric_name, current)
            enough = sufficient(interval, limit=limit, value=value, baseline=entry.get("baseline"))
            detail["interval"] = interval.as_dict() if interval else None
        if not enough:
            detail["note"] = "too few rows for this change to stand out from sampling noise: the figure is noisy"
        out.append(alert(entry["name"], value=value, fired=fired, sample_sufficient=enough, measured=True,
                         **common, **detail))
    return out
