"""Data drift per feature between a reference and a current sample.

PSI over bins cut at the reference's quantiles is the alerting statistic (0.1 moderate, 0.2
significant); the two-sample Kolmogorov–Smirnov test (numeric) or a chi² test on the same bins is
reported beside it, since with thousands of rows tiny harmless shifts are "significant" to a test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tools.ml.rules import PSI_MODERATE, PSI_SIGNIFICANT

__all__ = ["quantile_edges", "psi_from_counts", "psi", "feature_drift", "drift_table"]

_EPS = 1e-4


def quantile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates dropped for discrete features)."""
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    return np.unique(np.quantile(reference[~np.isnan(reference)], qs))


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    values = values[~np.isnan(values)]
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index from bin counts (empty bins floored at 1e-4 of the mass)."""
    ref = np.clip(ref_counts / max(ref_counts.sum(), 1), _EPS, None)
    cur = np.clip(cur_counts / max(cur_counts.sum(), 1), _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference`` on reference-quantile bins."""
    edges = quantile_edges(reference, bins)
    return psi_from_counts(_counts(reference, edges), _counts(current, edges))


def _level(value: float) -> str:
    if value >= PSI_SIGNIFICANT:
        return "significant"
    return "moderate" if value >= PSI_MODERATE else "stable"


def feature_drift(name: str, reference: pd.Series, current: pd.Series, *, bins: int = 10,
                  alert_at: float = PSI_SIGNIFICANT) -> dict[str, Any]:
    """PSI (alerting), KS or chi² (reported), and the means, for one feature."""
    if pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(current):
        ref = reference.to_numpy(dtype=float)
        cur = current.to_numpy(dtype=float)
        edges = quantile_edges(ref, bins)
        value = psi_from_counts(_counts(ref, edges), _counts(cur, edges))
        ks = stats.ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)])
        extra = {"test": "ks", "statistic": round(float(ks.statistic), 6), "p_value": float(ks.pvalue),
                 "reference_mean": round(float(np.nanmean(ref)), 6), "current_mean": round(float(np.nanmean(cur)), 6)}
    else:
        cats = sorted(set(reference.dropna().astype(str)) | set(current.dropna().astype(str)))
        ref_c = reference.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy()
        cur_c = current.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy()
        value = psi_from_counts(ref_c, cur_c)
        chi2, p_value, _, _ = stats.chi2_contingency(np.vstack([ref_c, cur_c]) + 0.5)
        extra = {"test": "chi2", "statistic": round(float(chi2), 6), "p_value": float(p_value)}
    value = round(value, 6)
    return {"name": name, "psi": value, "drifted": value >= alert_at, "level": _level(value), **extra}


def drift_table(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], *, bins: int = 10,
                alert_at: float = PSI_SIGNIFICANT) -> dict[str, Any]:
    """Drift of every feature, and the list of drifted ones."""
    rows = [feature_drift(f, reference[f], current[f], bins=bins, alert_at=alert_at) for f in features]
    return {"statistic": "psi", "bins": bins, "moderate": PSI_MODERATE, "significant": alert_at,
            "reference_rows": int(len(reference)), "current_rows": int(len(current)),
            "features": rows, "drifted": [r["name"] for r in rows if r["drifted"]],
            "moderate_features": [r["name"] for r in rows if r["level"] == "moderate"]}
