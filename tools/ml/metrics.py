"""Performance figures for every model kind, from the sandbox's predictions and the data's labels.

The runner sends predictions (class indices, values or anomaly flags) and scores; the labels are read on
the host. An :class:`Outcome` pairs them, :func:`figures` gives the kind's headline figures (scikit-learn)
and :func:`metric` any single named metric (the names the mission's constraints use: ``precision``,
``f1_macro``, ``mae``, ``roc_auc``, ``log_loss``...), which the sample-size check resamples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from tools.ml.errors import DataError
from tools.ml.model import ModelInfo
from tools.ml.sandboxed import Scores

__all__ = ["Outcome", "outcome", "figures", "metric", "supports", "resolve", "unlabelled_figures", "performance",
           "flags", "truth_flags",
           "label_key", "min_positives_for_drop", "HIGHER_IS_BETTER", "Z_ONE_SIDED_95"]

Z_ONE_SIDED_95 = 1.645
HIGHER_IS_BETTER = {"precision", "recall", "f1", "accuracy", "roc_auc", "balanced_accuracy", "average_precision",
                    "specificity", "r2"}


def _r(value: float) -> float:
    return round(float(value), 6)


def label_key(value: Any) -> tuple[str, Any]:
    """A label compared by meaning, not type: ``1``, ``1.0`` and ``np.int64(1)`` are one class, ``"1"`` another."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", float(value))
    return ("s", str(value))


def _positive_index(info: ModelInfo) -> int:
    return [label_key(c) for c in info.classes or []].index(label_key(info.positive_label))


def flags(info: ModelInfo, scores: Scores) -> np.ndarray:
    """1 where the model flags the row: an anomaly, or a binary classifier's positive class."""
    if info.kind == "anomaly":
        return scores.pred.astype(np.int8)
    if info.kind == "binary" and info.classes:
        return (scores.pred == _positive_index(info)).astype(np.int8)
    raise ValueError(f"a {info.kind} model flags no rows")


def _no_empty_labels(values: pd.Series, path: str) -> None:
    if values.isna().any():
        column = str(values.name)
        raise DataError(f"{path!r} label column {column!r} has {int(values.isna().sum())} empty values", path=path,
                        fix=f"fill in {column!r} for every row, or drop the unlabelled rows")


def truth_flags(info: ModelInfo, values: pd.Series, *, path: str) -> np.ndarray:
    """The ground truth as 0/1: an anomaly (detectors) or the positive class (binary classifiers)."""
    _no_empty_labels(values, path)
    if info.kind == "binary" and info.classes:
        positive = label_key(info.positive_label)
        return np.array([label_key(v) == positive for v in values], dtype=np.int8)
    column = str(values.name)
    numeric = pd.to_numeric(values.replace({True: 1, False: 0}), errors="coerce")
    if numeric.isna().any() or not numeric.isin([0, 1]).all():
        example = values[numeric.isna() | ~numeric.isin([0, 1])].iloc[0]
        raise DataError(f"{path!r} label column {column!r} must hold 0/1 (1 = anomaly); found {str(example)[:40]!r}",
                        path=path, fix=f"encode {column!r} as 1 for anomalies and 0 otherwise")
    return numeric.to_numpy().astype(np.int8)


@dataclass(frozen=True)
class Outcome:
    """Predictions beside the truth, in one encoding per kind."""

    kind: str
    truth: np.ndarray
    """0/1 (anomaly, binary: 1 = the positive class), class index (multiclass; -1 for an unknown label), value."""
    pred: np.ndarray
    """Same encoding as ``truth``."""
    score: np.ndarray | None = None
    """Positive-class probability or anomaly score (anomaly, binary)."""
    proba: np.ndarray | None = None
    """Class probabilities (classifiers)."""
    classes: tuple[Any, ...] = ()

    def take(self, idx: np.ndarray) -> Outcome:
        """The outcome on a subset (or resample) of rows."""
        return replace(self, truth=self.truth[idx], pred=self.pred[idx],
                       score=None if self.score is None else self.score[idx],
                       proba=None if self.proba is None else self.proba[idx])

    def __len__(self) -> int:
        return len(self.truth)


def outcome(info: ModelInfo, scores: Scores, labels: pd.Series, *, path: str) -> Outcome:
    """Pair the model's predictions with the labels, checked (no empty label, values of the right type)."""
    if info.kind in ("anomaly", "binary"):
        return Outcome(kind=info.kind, truth=truth_flags(info, labels, path=path), pred=flags(info, scores),
                       score=scores.score, proba=scores.proba, classes=tuple(info.classes or ()))
    _no_empty_labels(labels, path)
    if info.kind == "regression":
        truth = pd.to_numeric(labels, errors="coerce")
        if truth.isna().any():
            example = labels[truth.isna()].iloc[0]
            raise DataError(f"{path!r} target column {labels.name!r} holds non-numeric values (e.g. "
                            f"{str(example)[:40]!r})", path=path, fix=f"make {labels.name!r} a numeric column")
        return Outcome(kind="regression", truth=truth.to_numpy(dtype=np.float64),
                       pred=scores.pred.astype(np.float64))
    lookup = {label_key(c): i for i, c in enumerate(info.classes or [])}
    truth_idx = np.array([lookup.get(label_key(v), -1) for v in labels], dtype=np.int64)
    return Outcome(kind="multiclass", truth=truth_idx, pred=scores.pred.astype(np.int64), proba=scores.proba,
                   classes=tuple(info.classes or ()))


# ---------------------------------------------------------------------------------------------- single metrics

def _binary_counts(o: Outcome) -> tuple[int, int, int, int]:
    t, p = o.truth.astype(bool), o.pred.astype(bool)
    return int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum()), int((~t & ~p).sum())


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _averaged(name: str, average: str) -> Callable[[Outcome], float]:
    fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[name]

    def compute(o: Outcome) -> float:
        if o.kind == "multiclass":
            return fn(o.truth, o.pred, labels=list(range(len(o.classes))), average=average, zero_division=0)
        return fn(o.truth, o.pred, average="binary" if average == "binary" else average, zero_division=0)

    return compute


def _roc_auc(o: Outcome) -> float:
    if o.kind == "multiclass":
        if o.proba is None or len(np.unique(o.truth[o.truth >= 0])) < 2:
            return math.nan
        known = o.truth >= 0
        present = np.unique(o.truth[known])
        if len(present) < len(o.classes):
            return math.nan  # one-vs-rest AUC needs every class in the sample
        return skm.roc_auc_score(o.truth[known], o.proba[known], multi_class="ovr", average="macro")
    if o.score is None or not 0 < o.truth.sum() < len(o.truth):
        return math.nan
    return skm.roc_auc_score(o.truth, o.score)


def _log_loss(o: Outcome) -> float:
    if o.kind == "multiclass":
        known = o.truth >= 0
        if o.proba is None or not known.any():
            return math.nan
        return skm.log_loss(o.truth[known], np.clip(o.proba[known], 1e-15, 1), labels=list(range(len(o.classes))))
    if o.kind == "binary" and o.score is not None:
        return skm.log_loss(o.truth, np.clip(o.score, 1e-15, 1 - 1e-15), labels=[0, 1])
    return math.nan


def _mape(o: Outcome) -> float:
    nonzero = o.truth != 0
    return skm.mean_absolute_percentage_error(o.truth[nonzero], o.pred[nonzero]) if nonzero.any() else math.nan


_METRICS: dict[str, Callable[[Outcome], float]] = {
    "accuracy": lambda o: skm.accuracy_score(o.truth, o.pred),
    "balanced_accuracy": lambda o: skm.balanced_accuracy_score(o.truth, o.pred),
    "error_rate": lambda o: 1 - skm.accuracy_score(o.truth, o.pred),
    "alert_rate": lambda o: float(np.mean(o.pred)) if len(o) else 0.0,
    "specificity": lambda o: _ratio(_binary_counts(o)[3], _binary_counts(o)[3] + _binary_counts(o)[1]),
    "false_positive_rate": lambda o: _ratio(_binary_counts(o)[1], _binary_counts(o)[1] + _binary_counts(o)[3]),
    "false_negative_rate": lambda o: _ratio(_binary_counts(o)[2], _binary_counts(o)[2] + _binary_counts(o)[0]),
    "average_precision": lambda o: skm.average_precision_score(o.truth, o.score)
    if o.score is not None and 0 < o.truth.sum() < len(o) else math.nan,
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "mae": lambda o: skm.mean_absolute_error(o.truth, o.pred),
    "mse": lambda o: skm.mean_squared_error(o.truth, o.pred),
    "rmse": lambda o: math.sqrt(skm.mean_squared_error(o.truth, o.pred)),
    "r2": lambda o: skm.r2_score(o.truth, o.pred) if len(o) > 1 else math.nan,
    "mape": _mape,
}
for _name in ("precision", "recall", "f1"):
    _METRICS[_name] = _averaged(_name, "binary")
    for _avg in ("macro", "weighted", "micro"):
        _METRICS[f"{_name}_{_avg}"] = _averaged(_name, _avg)
_METRICS.update({f"roc_auc_{a}": _roc_auc for a in ("macro", "weighted")})

_KIND_METRICS = {
    "anomaly": {"precision", "recall", "f1", "accuracy", "roc_auc", "balanced_accuracy", "average_precision",
                "specificity", "false_positive_rate", "false_negative_rate", "alert_rate", "error_rate"},
    "regression": {"mae", "mse", "rmse", "r2", "mape"},
}
_KIND_METRICS["binary"] = _KIND_METRICS["anomaly"] | {"log_loss"}


def supports(kind: str, name: str) -> bool:
    """Whether ``name`` is a metric of a ``kind`` model (multiclass: the averaged forms and accuracy-like ones)."""
    if kind == "multiclass":
        return name in _METRICS and name not in _KIND_METRICS["regression"] and name not in (
            "precision", "recall", "f1", "specificity", "false_positive_rate", "false_negative_rate",
            "average_precision", "alert_rate")
    return name in _KIND_METRICS.get(kind, set()) | ({f"{m}_{a}" for m in ("precision", "recall", "f1")
                                                      for a in ("macro", "weighted", "micro")}
                                                     if kind in ("binary", "anomaly") else set())


def resolve(kind: str, name: str) -> str:
    """The metric to compute for ``name`` on a ``kind`` model: a multiclass "f1" means macro F1."""
    if kind == "multiclass" and name in ("precision", "recall", "f1", "specificity"):
        return f"{name}_macro"
    return name


def metric(name: str, o: Outcome) -> float:
    """One named metric (NaN when it cannot be computed on these rows, e.g. ROC AUC with one class)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined metrics on tiny resamples become NaN, not log noise
        try:
            return float(_METRICS[name](o))
        except ValueError:
            return math.nan


# ---------------------------------------------------------------------------------------------- figures per kind

def performance(y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None = None) -> dict[str, Any]:
    """Precision, recall, F1, accuracy, alert rate (and ROC AUC when a score is given) for 0/1 labels."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    out: dict[str, Any] = {
        "rows": int(len(y_true)),
        "positives": int(y_true.sum()),
        "predicted_positives": int(y_pred.sum()),
        "precision": _r(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": _r(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": _r(skm.f1_score(y_true, y_pred, zero_division=0)),
        "accuracy": _r(skm.accuracy_score(y_true, y_pred)),
        "alert_rate": _r(y_pred.mean()) if len(y_pred) else 0.0,
    }
    if score is not None and 0 < y_true.sum() < len(y_true):
        out["roc_auc"] = _r(skm.roc_auc_score(y_true, score))
    return out


def figures(o: Outcome) -> dict[str, Any]:
    """The headline figures of a labelled outcome, by kind."""
    if o.kind in ("anomaly", "binary"):
        out = performance(o.truth, o.pred, o.score)
        if o.kind == "binary" and o.score is not None:
            out["log_loss"] = _r(metric("log_loss", o))
        return out
    if o.kind == "regression":
        out = {"rows": int(len(o))}
        for name in ("mae", "rmse", "mse", "r2", "mape"):
            value = metric(name, o)
            out[name] = None if math.isnan(value) else _r(value)
        out["mean_target"], out["mean_prediction"] = _r(np.mean(o.truth)), _r(np.mean(o.pred))
        return out
    labels = list(range(len(o.classes)))
    out = {"rows": int(len(o)), "classes": len(o.classes), "unknown_labels": int((o.truth < 0).sum()),
           "accuracy": _r(skm.accuracy_score(o.truth, o.pred))}
    for avg in ("macro", "weighted"):
        for name in ("precision", "recall", "f1"):
            out[f"{name}_{avg}"] = _r(metric(f"{name}_{avg}", o))
    for name in ("roc_auc", "log_loss"):
        value = metric(name, o)
        if not math.isnan(value):
            out[name] = _r(value)
    p, r, f, support = skm.precision_recall_fscore_support(o.truth, o.pred, labels=labels, zero_division=0)
    predicted = np.bincount(o.pred[o.pred >= 0], minlength=len(labels))
    out["per_class"] = [{"class": c, "precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]),
                         "support": int(support[i]), "predicted": int(predicted[i])} for i, c in enumerate(o.classes)]
    return out


def unlabelled_figures(info: ModelInfo, scores: Scores) -> dict[str, Any]:
    """What can be said without labels: the alert rate, the predicted class mix, the predictions' spread."""
    rows = int(len(scores.pred))
    if info.kind in ("anomaly", "binary"):
        return {"rows": rows, "alert_rate": _r(flags(info, scores).mean()) if rows else 0.0}
    if info.kind == "regression":
        return {"rows": rows, "mean_prediction": _r(np.mean(scores.pred)), "std_prediction": _r(np.std(scores.pred))}
    counts = np.bincount(scores.pred[scores.pred >= 0], minlength=len(info.classes or []))
    return {"rows": rows, "predicted_share": {str(c): _r(counts[i] / max(rows, 1)) for i, c in
                                              enumerate(info.classes or [])}}


def min_positives_for_drop(precision: float, relative_drop: float, *, z: float = Z_ONE_SIDED_95) -> int:
    """Predicted positives a window needs before a relative precision drop is distinguishable from noise.

    Precision over ``n`` alerts has standard error ``sqrt(p(1-p)/n)``; the drop ``d·p`` must exceed
    ``z`` standard errors, so ``n >= z²(1-p) / (p·d²)``.
    """
    if precision <= 0 or relative_drop <= 0:
        return 0
    return int(math.ceil(z * z * (1 - precision) / (precision * relative_drop * relative_drop)))
