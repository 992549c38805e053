"""Bias, when the mission asks for it: per-group figures for the model's kind (fairlearn's MetricFrame),
disparities between groups (difference and ratio) and the rule that flags them.

Which columns are sensitive: those the mission names ("bias across sex"), those ``model.yaml`` marks
(``sensitive_features: [...]``), and the segment column the caller passes. A mission that asks for a bias
check without naming a column gets the usual suspects found in the data (sex, gender, age group, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate
from sklearn import metrics as skm

from orchestrator.constraints import ConstraintSet
from tools.ml.metrics import Outcome
from tools.ml.model import ModelInfo
from tools.ml.rules import FOUR_FIFTHS, MIN_GROUP_ROWS

__all__ = ["sensitive_features", "bias_report", "COMMON_SENSITIVE"]

COMMON_SENSITIVE = ("sex", "gender", "age_group", "age_band", "race", "ethnicity", "religion", "nationality",
                    "disability", "marital_status")


def sensitive_features(cs: ConstraintSet, info: ModelInfo, *, segment_column: str, columns: list[str]
                       ) -> tuple[list[str], list[dict[str, str]]]:
    """The columns to slice by, and findings for the ones asked for that the data does not have."""
    meta = info.metadata
    marked = meta.get("sensitive_features") or (meta.get("fairness") or {}).get("sensitive_features") or []
    asked = list(cs.fairness.sensitive_features) if cs.fairness else []
    wanted = list(dict.fromkeys([*asked, *[str(m) for m in marked], *([segment_column] if segment_column else [])]))
    lower = {c.lower(): c for c in columns}
    found, findings = [], []
    for name in wanted:
        column = lower.get(name.lower())
        if column is None:
            findings.append({"severity": "medium", "title": "sensitive column absent",
                             "detail": f"{name!r} is not a column of the current batch: no bias figures for it"})
        else:
            found.append(column)
    if cs.fairness and not wanted:
        found = [lower[c] for c in COMMON_SENSITIVE if c in lower]
        if not found:
            findings.append({"severity": "medium", "title": "bias check asked, no sensitive column",
                             "detail": "the mission asks for a bias check but names no attribute and the data has "
                                       f"none of {', '.join(COMMON_SENSITIVE)}: name the column to check"})
    return list(dict.fromkeys(found)), findings


def _metric_fns(o: Outcome, labelled: bool) -> tuple[dict[str, Any], list[str]]:
    """MetricFrame metrics for the kind, and the headline ones whose ratio the rule watches."""
    count = {"rows": lambda yt, yp: len(yp)}
    if o.kind in ("anomaly", "binary"):
        fns = {**count, "selection_rate": selection_rate}
        if not labelled:
            return fns, ["selection_rate"]
        fns.update(precision=lambda yt, yp: skm.precision_score(yt, yp, zero_division=0),
                   recall=lambda yt, yp: skm.recall_score(yt, yp, zero_division=0),
                   f1=lambda yt, yp: skm.f1_score(yt, yp, zero_division=0),
                   accuracy=skm.accuracy_score)
        return fns, ["selection_rate", "recall"]
    if o.kind == "regression":
        fns = {**count, "mean_prediction": lambda yt, yp: float(np.mean(yp))}
        if not labelled:
            return fns, ["mean_prediction"]
        fns.update(mae=skm.mean_absolute_error, rmse=lambda yt, yp: float(np.sqrt(skm.mean_squared_error(yt, yp))))
        return fns, ["mae"]
    labels = list(range(len(o.classes)))
    if not labelled:
        return count, []
    fns = {**count, "accuracy": skm.accuracy_score,
           "f1_macro": lambda yt, yp: skm.f1_score(yt, yp, labels=labels, average="macro", zero_division=0)}
    return fns, ["accuracy", "f1_macro"]


def _disparity(feature: str, metric: str, by_group: pd.DataFrame) -> dict[str, Any] | None:
    big = by_group[by_group["rows"] >= MIN_GROUP_ROWS][metric].astype(float).dropna()
    if len(big) < 2:
        return None
    low, high = float(big.min()), float(big.max())
    ratio = 1.0 if high == low else (low / high if high > 0 else 0.0)
    return {"feature": feature, "metric": metric, "difference": round(high - low, 6), "ratio": round(ratio, 6),
            "lowest_group": str(big.idxmin()), "highest_group": str(big.idxmax()), "groups_compared": int(len(big))}


def bias_report(o: Outcome, frame: pd.DataFrame, features: list[str], *, labelled: bool,
                threshold: float = FOUR_FIFTHS) -> dict[str, Any]:
    """``{sensitive_features, groups, disparities, passes, ...}`` for the current batch.

    ``o`` holds the predictions (and, when ``labelled``, the truth; otherwise ``truth`` is ignored).
    Groups smaller than :data:`MIN_GROUP_ROWS` are reported but not compared.
    """
    fns, headline = _metric_fns(o, labelled)
    truth = o.truth if labelled else o.pred
    groups, disparities = [], []
    for feature in features:
        values = frame[feature].astype(str).fillna("(missing)").to_numpy()
        mf = MetricFrame(metrics=fns, y_true=truth, y_pred=o.pred, sensitive_features=pd.Series(values, name=feature))
        by_group = mf.by_group
        for value, row in by_group.iterrows():
            groups.append({"feature": feature, "value": str(value), "rows": int(row["rows"]),
                           "sample_sufficient": int(row["rows"]) >= MIN_GROUP_ROWS,
                           "metrics": {k: round(float(v), 6) for k, v in row.items() if k != "rows"}})
        for metric in fns:
            if metric != "rows":
                entry = _disparity(feature, metric, by_group)
                if entry is not None:
                    entry["headline"] = metric in headline
                    disparities.append(entry)
    watched = [d for d in disparities if d["headline"]]
    worst = min(watched, key=lambda d: d["ratio"], default=None)
    return {"sensitive_features": features, "groups": groups, "disparities": disparities, "threshold": threshold,
            "headline_metrics": headline, "worst": worst, "labelled": labelled,
            "passes": worst is None or worst["ratio"] >= threshold,
            "rule": f"ratio (lowest/highest group) of {', '.join(headline) or 'no metric'} >= {threshold}",
            "min_group_rows": MIN_GROUP_ROWS}
