"""Whether a batch holds enough rows for a metric's alert to mean something.

Precision keeps its closed form (:func:`~tools.ml.metrics.min_positives_for_drop`). Every other metric gets
a bootstrap interval on the batch: the sample suffices when the interval's half-width (about 1.645
standard errors at 90%) is no wider than the change the rule must detect, the distance between the
baseline and the alert limit (or, without a baseline, between the value and the limit).

The resamples are computed in bulk: confusion-matrix metrics from one ``bincount`` over all resamples,
regression errors and log loss from per-row terms; only rank metrics (ROC AUC, average precision) call
scikit-learn per resample, on fewer resamples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tools.ml.metrics import Outcome, metric

__all__ = ["Interval", "bootstrap_interval", "paired_delta_interval", "sufficient", "RESAMPLES", "LEVEL"]

RESAMPLES = 200
LEVEL = 0.90
_RANK_RESAMPLES = 60
_MAX_CELLS = 20_000_000
_CONFUSION = {"precision", "recall", "f1", "accuracy", "balanced_accuracy", "error_rate", "alert_rate",
              "specificity", "false_positive_rate", "false_negative_rate"}


@dataclass(frozen=True)
class Interval:
    """A bootstrap percentile interval of one metric on one batch."""

    low: float
    high: float
    resamples: int
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def as_dict(self) -> dict[str, float | int | str]:
        return {"low": round(self.low, 6), "high": round(self.high, 6), "level": self.level,
                "resamples": self.resamples, "method": "bootstrap percentile"}


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def _confusion_values(name: str, o: Outcome, idx: np.ndarray) -> np.ndarray:
    """``name`` on every resample (rows of ``idx``) from resampled confusion matrices."""
    classes = 2 if o.kind in ("anomaly", "binary") else len(o.classes)
    k = classes + 1  # the last row/column collects labels outside the model's classes (always wrong)
    truth = np.where((o.truth >= 0) & (o.truth < classes), o.truth, classes).astype(np.int64)
    pred = np.where((o.pred >= 0) & (o.pred < classes), o.pred, classes).astype(np.int64)
    code = truth * k + pred
    b, n = idx.shape
    flat = (np.arange(b)[:, None] * k * k + code[idx]).ravel()
    cm = np.bincount(flat, minlength=b * k * k).reshape(b, k, k).astype(np.float64)
    diag = np.einsum("bii->bi", cm)[:, :classes]
    pred_c, true_c = cm.sum(axis=1)[:, :classes], cm.sum(axis=2)[:, :classes]
    base, _, average = name.partition("_")
    if name in ("accuracy", "error_rate") or base == "accuracy":
        acc = np.einsum("bii->b", cm[:, :classes, :classes]) / n
        return 1 - acc if name == "error_rate" else acc
    if name == "alert_rate":
        return pred_c[:, 1] / n
    if name == "balanced_accuracy":  # as scikit-learn: labels outside the classes count as one more class
        true_all = cm.sum(axis=2)
        recall = _div(np.einsum("bii->bi", cm), true_all)
        present = true_all > 0
        return _div((recall * present).sum(axis=1), present.sum(axis=1).astype(np.float64))
    tn, fp = cm[:, 0, 0], cm[:, 0, 1]
    fn, tp = cm[:, 1, 0], cm[:, 1, 1]
    if name == "specificity":
        return _div(tn, tn + fp)
    if name == "false_positive_rate":
        return _div(fp, fp + tn)
    if name == "false_negative_rate":
        return _div(fn, fn + tp)
    per = {"precision": _div(diag, pred_c), "recall": _div(diag, true_c), "f1": _div(2 * diag, pred_c + true_c)}[base]
    if not average:  # binary: the positive class
        return per[:, 1]
    if average == "macro":
        return per.mean(axis=1)
    if average == "weighted":
        return _div((per * true_c).sum(axis=1), true_c.sum(axis=1))
    tp_all, pred_all, true_all = diag.sum(axis=1), pred_c.sum(axis=1), true_c.sum(axis=1)
    micro = {"precision": _div(tp_all, pred_all), "recall": _div(tp_all, true_all),
             "f1": _div(2 * tp_all, pred_all + true_all)}
    return micro[base]


def _values(name: str, o: Outcome, idx: np.ndarray) -> np.ndarray:
    base = name.split("_")[0]
    if name in _CONFUSION or base in ("precision", "recall", "f1"):
        return _confusion_values(name, o, idx)
    if name in ("mae", "mse", "rmse", "mape", "r2"):
        err = o.pred - o.truth
        if name == "mae":
            return np.abs(err)[idx].mean(axis=1)
        if name in ("mse", "rmse"):
            mse = (err ** 2)[idx].mean(axis=1)
            return np.sqrt(mse) if name == "rmse" else mse
        if name == "mape":
            rel = np.abs(err) / np.maximum(np.abs(o.truth), np.finfo(np.float64).eps)
            keep = (o.truth != 0)[idx]
            return _div((rel[idx] * keep).sum(axis=1), keep.sum(axis=1).astype(np.float64))
        truth = o.truth[idx]
        total = ((truth - truth.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        return np.where(total > 0, 1 - (err[idx] ** 2).sum(axis=1) / np.where(total > 0, total, 1), np.nan)
    if name == "log_loss" and o.kind == "binary" and o.score is not None:
        p = np.clip(o.score, 1e-15, 1 - 1e-15)
        per_row = -(o.truth * np.log(p) + (1 - o.truth) * np.log(1 - p))
        return per_row[idx].mean(axis=1)
    if name == "log_loss" and o.kind == "multiclass" and o.proba is not None:
        known = o.truth >= 0
        picked = np.clip(o.proba[np.arange(len(o)), np.where(known, o.truth, 0)], 1e-15, 1)
        per_row = np.where(known, -np.log(picked), 0.0)
        return _div((per_row[idx]).sum(axis=1), known[idx].sum(axis=1).astype(np.float64))
    return np.array([metric(name, o.take(row)) for row in idx[:_RANK_RESAMPLES]])  # ROC AUC, average precision


def bootstrap_interval(name: str, o: Outcome, *, resamples: int = RESAMPLES, seed: int = 0) -> Interval | None:
    """The ``LEVEL`` interval of metric ``name`` over row resamples (None when it cannot be computed)."""
    n = len(o)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _MAX_CELLS // n)  # resampled row indices held at once stay bounded for large batches
    values = np.concatenate([_values(name, o, rng.integers(0, n, size=(min(per_chunk, resamples - done), n)))
                             for done in range(0, resamples, per_chunk)])
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) // 2 or not len(finite):
        return None
    tail = (1 - LEVEL) / 2 * 100
    return Interval(low=float(np.percentile(finite, tail)), high=float(np.percentile(finite, 100 - tail)),
                    resamples=int(len(finite)))


def paired_delta_interval(name: str, candidate: Outcome, production: Outcome, *, resamples: int = 1000,
                          level: float = 0.95, seed: int = 0) -> Interval | None:
    """The interval of ``metric(candidate) - metric(production)`` over the same row resamples (both models
    scored the same rows, so each resample keeps the pairing); None when it cannot be computed."""
    n = len(candidate)
    if n < 2 or len(production) != n:
        return None
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _MAX_CELLS // n)
    deltas = []
    for done in range(0, resamples, per_chunk):
        idx = rng.integers(0, n, size=(min(per_chunk, resamples - done), n))
        deltas.append(_values(name, candidate, idx) - _values(name, production, idx))
    values = np.concatenate(deltas)
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) // 2 or not len(finite):
        return None
    tail = (1 - level) / 2 * 100
    return Interval(low=float(np.percentile(finite, tail)), high=float(np.percentile(finite, 100 - tail)),
                    resamples=int(len(finite)), level=level)


def sufficient(interval: Interval | None, *, limit: float, value: float, baseline: float | None) -> bool:
    """Enough rows: the interval is narrower than the change the rule is there to catch."""
    if interval is None:
        return False
    gap = abs(baseline - limit) if baseline is not None and baseline != limit else abs(value - limit)
    return interval.half_width <= gap and not math.isnan(gap)
