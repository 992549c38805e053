"""Performance figures and the sample sizes that make them meaningful."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

__all__ = ["performance", "min_positives_for_drop", "Z_ONE_SIDED_95"]

Z_ONE_SIDED_95 = 1.645


def performance(y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None = None) -> dict[str, Any]:
    """Precision, recall, F1, accuracy, alert rate (and ROC AUC when a score is given) for 0/1 labels."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    out: dict[str, Any] = {
        "rows": int(len(y_true)),
        "positives": int(y_true.sum()),
        "predicted_positives": int(y_pred.sum()),
        "precision": round(float(precision_score(y_true, y_pred, zero_division=0)), 6),
        "recall": round(float(recall_score(y_true, y_pred, zero_division=0)), 6),
        "f1": round(float(f1_score(y_true, y_pred, zero_division=0)), 6),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "alert_rate": round(float(y_pred.mean()), 6) if len(y_pred) else 0.0,
    }
    if score is not None and 0 < y_true.sum() < len(y_true):
        out["roc_auc"] = round(float(roc_auc_score(y_true, score)), 6)
    return out


def min_positives_for_drop(precision: float, relative_drop: float, *, z: float = Z_ONE_SIDED_95) -> int:
    """Predicted positives a window needs before a relative precision drop is distinguishable from noise.

    Precision over ``n`` alerts has standard error ``sqrt(p(1-p)/n)``; the drop ``d·p`` must exceed
    ``z`` standard errors, so ``n >= z²(1-p) / (p·d²)``.
    """
    if precision <= 0 or relative_drop <= 0:
        return 0
    return int(math.ceil(z * z * (1 - precision) / (precision * relative_drop * relative_drop)))
