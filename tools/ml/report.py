"""The readable evaluation page: one self-contained HTML file (inline SVG plots, no external assets)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: the page is rendered on servers and in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment, FileSystemLoader, select_autoescape  # noqa: E402

__all__ = ["render_html", "TEMPLATES"]

TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
_MAX_HISTOGRAMS = 6


def _svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog so the SVG can sit inside HTML


def _psi_chart(features: list[dict[str, Any]], moderate: float, significant: float) -> str:
    names = [f["name"] for f in features]
    values = [f["psi"] for f in features]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(names))))
    colors = ["#d1495b" if v >= significant else "#edae49" if v >= moderate else "#66a182" for v in values]
    ax.barh(names, values, color=colors)
    ax.axvline(moderate, color="#edae49", linestyle="--", label=f"moderate {moderate}")
    ax.axvline(significant, color="#d1495b", linestyle="--", label=f"significant {significant}")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.invert_yaxis()
    ax.set_xlabel("PSI")
    ax.legend(loc="lower right")
    ax.set_title("Population stability index per feature")
    return _svg(fig)


def _histogram(name: str, ref: pd.Series, cur: pd.Series) -> str:
    fig, ax = plt.subplots(figsize=(5, 2.8))
    both = np.concatenate([ref.dropna().to_numpy(float), cur.dropna().to_numpy(float)])
    bins = np.histogram_bin_edges(both, bins=30)
    ax.hist(ref.dropna(), bins=bins, alpha=0.55, density=True, label="reference", color="#00798c")
    ax.hist(cur.dropna(), bins=bins, alpha=0.55, density=True, label="current", color="#d1495b")
    ax.set_title(name)
    ax.legend()
    return _svg(fig)


def _bias_chart(bias: dict[str, Any], metrics: list[str]) -> str:
    groups = [g for g in bias["groups"] if g["feature"] == bias["sensitive_features"][0]]
    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / max(len(metrics), 1)
    for i, metric in enumerate(metrics):
        ax.bar(np.arange(len(groups)) + i * width, [g["metrics"].get(metric, 0.0) for g in groups], width,
               label=metric)
    ax.set_xticks(np.arange(len(groups)) + width * (len(metrics) - 1) / 2, [g["value"] for g in groups])
    ax.set_title(f"Metrics by {bias['sensitive_features'][0]}")
    ax.legend()
    return _svg(fig)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_html(doc: dict[str, Any], reference: pd.DataFrame | None, current: pd.DataFrame | None) -> str:
    """Render the evaluation document (with plots when the data frames are available)."""
    drift = doc.get("drift") or {}
    features = drift.get("features") or []
    psi_svg = _psi_chart(features, drift["moderate"], drift["significant"]) if features else ""
    hist_svgs = []
    if reference is not None and current is not None:
        ranked = sorted(features, key=lambda f: -f["psi"])
        shown = [f for f in ranked if f["drifted"]][:_MAX_HISTOGRAMS] or ranked[:2]
        hist_svgs = [_histogram(f["name"], reference[f["name"]], current[f["name"]]) for f in shown
                     if pd.api.types.is_numeric_dtype(reference[f["name"]])]
    perf = doc.get("performance") or {}
    roles = [r for r in ("reference", "current") if perf.get(r)]
    names = ["precision", "recall", "f1", "accuracy", "roc_auc", "log_loss", "precision_macro", "recall_macro",
             "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted", "mae", "rmse", "mse", "r2", "mape",
             "mean_target", "mean_prediction", "alert_rate", "rows", "positives", "predicted_positives",
             "unknown_labels"]
    perf_rows = [n for n in names if any(n in perf[r] for r in roles)]
    per_class = (perf.get("current") or {}).get("per_class") or []
    history = doc.get("history") or []
    history_metrics = [n for n in ("precision", "f1_macro", "mae", "alert_rate", "mean_prediction")
                       if any(n in (h.get("performance") or {}) for h in history)][:3]
    candidate = doc.get("candidate") or {}
    candidate_rows = [n for n in names[:-4] if n in (candidate.get("performance") or {})]
    bias = doc.get("bias")
    bias_metrics = sorted({m for g in bias["groups"] for m in g["metrics"]}) if bias else []
    bias_svg = _bias_chart(bias, [m for m in bias_metrics if m not in ("mean_prediction",)][:4]) \
        if bias and bias["groups"] else ""
    return _ENV.get_template("evaluation.html.j2").render(
        doc=doc, fmt=_fmt, psi_svg=psi_svg, hist_svgs=hist_svgs, perf_roles=roles, perf_rows=perf_rows,
        per_class=per_class, history_metrics=history_metrics, candidate_rows=candidate_rows,
        bias_metrics=bias_metrics, bias_svg=bias_svg)
