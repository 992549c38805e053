"""Alert rules as configuration: the one file (``monitoring/alerts.yaml``) that the generated pipeline's
monitoring hooks read and that the evaluation keeps in step with the agreed thresholds."""

from __future__ import annotations

from typing import Any

import yaml

from tools.ml.rules import FOUR_FIFTHS

__all__ = ["ALERTS_PATH", "alert_rules", "render_rules", "FOUR_FIFTHS"]

ALERTS_PATH = "monitoring/alerts.yaml"


def alert_rules(alignment: dict[str, Any], *, features: list[str], reference_path: str,
                segment_column: str | None = None) -> dict[str, Any]:
    """Alert rules derived from the alignment's thresholds, for batch monitoring."""
    thresholds = alignment.get("thresholds") or {}
    psi = thresholds.get("psi") or {"moderate": 0.1, "significant": 0.2, "bins": 10}
    rules: list[dict[str, Any]] = [{
        "name": "feature_drift", "statistic": "psi", "bins": int(psi.get("bins", 10)),
        "reference": reference_path, "features": features, "warn_at": psi["moderate"], "threshold": psi["significant"],
        "fires_when": "psi >= threshold on any feature", "severity": "warning",
    }]
    for metric, entry in (thresholds.get("metrics") or {}).items():
        limit = entry.get("limit", entry.get("floor"))
        if limit is None:
            continue
        below = entry.get("direction", "below") == "below"
        rules.append({
            "name": entry.get("name") or f"{metric}_drop", "metric": metric, "direction": "below" if below else "above",
            "baseline": entry.get("baseline"), "threshold": limit,
            **({"relative_drop": entry["relative_drop"]} if "relative_drop" in entry else {}),
            **({"relative_rise": entry["relative_rise"]} if "relative_rise" in entry else {}),
            "requires_labels": True,
            "min_predicted_positives": entry.get("min_predicted_positives"),
            "min_labelled_rows": entry.get("min_labelled_rows"),
            "fires_when": f"{metric} {'<' if below else '>'} threshold on a labelled window"
                          + (" of at least min_labelled_rows rows" if entry.get("min_labelled_rows") else ""),
            "severity": "critical",
        })
    if rate := thresholds.get("alert_rate"):
        rules.append({
            "name": "alert_rate", "metric": "alert_rate", "baseline": rate["baseline"], "threshold": rate["ceiling"],
            "requires_labels": False, "fires_when": "share of rows flagged > threshold (fallback when unlabelled)",
            "severity": "warning",
        })
    if segment_column:
        bias = thresholds.get("bias") or {}
        rules.append({"name": "bias_disparity", "segment_column": segment_column,
                      "threshold": bias.get("threshold", FOUR_FIFTHS),
                      "fires_when": "min/max ratio across groups of a headline metric (selection rate, recall, "
                                    "accuracy or MAE by kind) < threshold", "severity": "warning"})
    return {"version": 1, "source": "reports/alignment.json", "rules": rules}


def render_rules(rules: dict[str, Any]) -> str:
    """YAML text of the rules, with a header saying who reads them."""
    header = ("# Alert rules for batch scoring. Read by pipelines/batch_scoring (monitoring hooks, every run)\n"
              "# and checked by the evaluation. Thresholds come from reports/alignment.json.\n")
    return header + yaml.safe_dump(rules, sort_keys=False)
