"""Performance figures and the sample sizes that make them meaningful."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from tools.ml.errors import DataError
from tools.ml.model import ModelInfo
from tools.ml.sandboxed import Scores

__all__ = ["performance", "min_positives_for_drop", "flags", "truth_flags", "label_key", "Z_ONE_SIDED_95"]

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


def label_key(value: Any) -> tuple[str, Any]:
    """A label compared by meaning, not type: ``1``, ``1.0`` and ``np.int64(1)`` are one class, ``"1"`` another."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", float(value))
    return ("s", str(value))


def flags(info: ModelInfo, scores: Scores) -> np.ndarray:
    """1 where the model flags the row: an anomaly, or a binary classifier's positive class."""
    if info.kind == "anomaly":
        return scores.pred.astype(np.int8)
    if info.kind == "binary" and info.classes:
        positive = [label_key(c) for c in info.classes].index(label_key(info.positive_label))
        return (scores.pred == positive).astype(np.int8)
    raise ValueError(f"a {info.kind} model flags no rows")


def truth_flags(info: ModelInfo, values: pd.Series, *, path: str) -> np.ndarray:
    """The ground truth as 0/1: an anomaly (detectors) or the positive class (binary classifiers)."""
    column = str(values.name)
    if values.isna().any():
        raise DataError(f"{path!r} label column {column!r} has {int(values.isna().sum())} empty values", path=path,
                        fix=f"fill in {column!r} for every row, or drop the unlabelled rows")
    if info.kind == "binary" and info.classes:
        positive = label_key(info.positive_label)
        return np.array([label_key(v) == positive for v in values], dtype=np.int8)
    numeric = pd.to_numeric(values.replace({True: 1, False: 0}), errors="coerce")
    if numeric.isna().any() or not numeric.isin([0, 1]).all():
        example = values[numeric.isna() | ~numeric.isin([0, 1])].iloc[0]
        raise DataError(f"{path!r} label column {column!r} must hold 0/1 (1 = anomaly); found {str(example)[:40]!r}",
                        path=path, fix=f"encode {column!r} as 1 for anomalies and 0 otherwise")
    return numeric.to_numpy().astype(np.int8)


def min_positives_for_drop(precision: float, relative_drop: float, *, z: float = Z_ONE_SIDED_95) -> int:
    """Predicted positives a window needs before a relative precision drop is distinguishable from noise.

    Precision over ``n`` alerts has standard error ``sqrt(p(1-p)/n)``; the drop ``d·p`` must exceed
    ``z`` standard errors, so ``n >= z²(1-p) / (p·d²)``.
    """
    if precision <= 0 or relative_drop <= 0:
        return 0
    return int(math.ceil(z * z * (1 - precision) / (precision * relative_drop * relative_drop)))
