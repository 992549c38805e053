"""The monitoring history as the evaluation records it, and the drift dashboard drawn from it.

Every evaluation appends one row per batch it looked at to ``monitoring/history.jsonl`` (the generated
scoring pipeline appends the same rows on every production run) and redraws ``reports/dashboard.html``:
per-feature drift over the batches, each monitored metric against its threshold, the alerts that fired.
The API (``GET /api/v1/missions/{id}/monitoring``) and the web page's Evaluation tab read the same file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.context import ToolContext
from tools.ml.dashboard_page import append_rows, read_history, render_dashboard, write_dashboard

__all__ = ["HISTORY_PATH", "DASHBOARD_PATH", "evaluation_rows", "record_evaluation", "monitoring_history",
           "redraw_dashboard", "check_dashboard"]

HISTORY_PATH = "monitoring/history.jsonl"
DASHBOARD_PATH = "reports/dashboard.html"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metric_entries(thresholds: dict[str, Any], performance: dict[str, Any], *, labelled: bool,
                    fired: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Each monitored metric of one batch: its value, the rule's threshold, and whether the alert fired.

    ``fired``: the evaluation's own alerts by name (the latest batch); None to apply the threshold here (an
    earlier batch of a folder, which the evaluation profiles but does not judge rule by rule).
    """
    out: dict[str, dict[str, Any]] = {}
    for metric, entry in (thresholds.get("metrics") or {}).items():
        value, limit = performance.get(metric), entry.get("limit")
        direction, name = entry.get("direction", "below"), entry.get("name") or f"{metric}_drop"
        measured = labelled and isinstance(value, (int, float)) and limit is not None
        if fired is not None:
            hit = bool((fired.get(name) or {}).get("fired"))
        else:
            hit = bool(measured and (value < limit if direction == "below" else value > limit))
        out[metric] = {"value": value if labelled else None, "threshold": limit, "direction": direction,
                       "alert": name, "fired": hit}
    rate = performance.get("alert_rate")
    if isinstance(rate, (int, float)):
        ceiling = (thresholds.get("alert_rate") or {}).get("ceiling")
        applies = not labelled and ceiling is not None  # the fallback rule: only for unlabelled batches
        judged = (fired or {}).get("alert_rate") or {}  # its limit allows for this batch's sampling noise
        limit = judged.get("threshold", ceiling)
        out["alert_rate"] = {"value": rate, "threshold": limit if applies else None,
                             "direction": "above" if applies else None, "alert": "alert_rate" if applies else None,
                             "fired": bool(judged.get("fired")) if applies and fired is not None
                             else bool(applies and rate > limit)}
    return out


def _drift(features: list[dict[str, Any]] | dict[str, Any], threshold: float) -> dict[str, Any]:
    if isinstance(features, dict):  # a batch entry's {name: {psi, test, p_value, drifted}}
        items = [{"name": name, **entry} for name, entry in features.items()]
    else:
        items = features
    return {"statistic": "psi", "threshold": threshold,
            "features": {f["name"]: {"score": f.get("psi"), "test": f.get("test"), "p_value": f.get("p_value"),
                                     "drifted": bool(f.get("drifted"))} for f in items}}


def evaluation_rows(doc: dict[str, Any], *, time: str | None = None) -> list[dict[str, Any]]:
    """One history row per batch of an evaluation document (``reports/evaluation.json``), oldest first."""
    time = time or _now()
    thresholds = doc.get("thresholds") or {}
    significant = float((thresholds.get("psi") or {}).get("significant", 0.2))
    model_sha = (doc.get("model") or {}).get("sha256")
    alerts = doc.get("alerts") or []
    latest_fired = {a["name"]: a for a in alerts}
    current = (doc.get("datasets") or {}).get("current") or {}
    latest_path = (doc.get("batches") or {}).get("latest") or current.get("path")
    rows = []
    for entry in doc.get("history") or []:
        if entry.get("path") == latest_path:
            continue  # the latest batch is written from the full evaluation below
        perf = entry.get("performance") or {}
        metrics = _metric_entries(thresholds, perf, labelled=bool(entry.get("labelled")), fired=None)
        drift = _drift(entry.get("drift") or [{"name": n, "psi": None, "drifted": True} for n in entry.get("drifted", [])],
                       significant)
        fired = (["feature_drift"] if entry.get("drifted") else []) + [m["alert"] for m in metrics.values() if m["fired"]]
        rows.append({"batch": entry.get("name"), "path": entry.get("path"), "sha256": entry.get("sha256"),
                     "time": time, "source": "evaluation", "model_sha256": model_sha, "rows": entry.get("rows"),
                     "labelled_rows": entry.get("rows") if entry.get("labelled") else 0,
                     "drift": drift, "metrics": metrics, "alerts_fired": fired})
    perf = (doc.get("performance") or {}).get("current") or {}
    labelled = bool(doc.get("labelled"))
    rows.append({"batch": Path(str(latest_path or "current")).stem, "path": latest_path, "sha256": current.get("sha256"),
                 "time": time, "source": "evaluation", "model_sha256": model_sha, "rows": current.get("rows"),
                 "labelled_rows": current.get("rows") if labelled else 0,
                 "drift": _drift((doc.get("drift") or {}).get("features") or [], significant),
                 "metrics": _metric_entries(thresholds, perf, labelled=labelled, fired=latest_fired),
                 "alerts_fired": [a["name"] for a in alerts if a.get("fired")]})
    return rows


def record_evaluation(ctx: ToolContext, doc: dict[str, Any]) -> dict[str, Any]:
    """Append the evaluation's rows to the history (a batch evaluated again with the same model is not added
    twice) and redraw the dashboard; returns the files written and the counts."""
    history = ctx.workspace / HISTORY_PATH
    added = append_rows(history, evaluation_rows(doc), skip_known=True)
    files = [ctx.record_file(history, kind="monitoring").path] if added else []
    rows, _ = read_history(history)
    files.append(ctx.write_text(DASHBOARD_PATH, render_dashboard(rows), kind="report").path)
    return {"history": HISTORY_PATH, "dashboard": DASHBOARD_PATH, "rows_added": len(added), "rows": len(rows),
            "files": files}


def monitoring_history(workspace: Path) -> dict[str, Any]:
    """What the API and the web page show: the history's rows and where the dashboard is."""
    rows, bad = read_history(workspace / HISTORY_PATH)
    return {"path": HISTORY_PATH, "rows": rows, "unreadable_lines": bad,
            "dashboard": DASHBOARD_PATH if (workspace / DASHBOARD_PATH).is_file() else None}


def redraw_dashboard(workspace: Path) -> int:
    """Draw ``reports/dashboard.html`` again from the history as it is now; returns the batches shown."""
    return write_dashboard(workspace / HISTORY_PATH, workspace / DASHBOARD_PATH)


def check_dashboard(workspace: Path) -> dict[str, Any]:
    """The report's check: the history has rows, and the page draws one point per batch in every chart and
    marks every fired alert (read back from the page itself, not assumed)."""
    import re

    rows, bad = read_history(workspace / HISTORY_PATH)
    page_file = workspace / DASHBOARD_PATH
    page = page_file.read_text(encoding="utf-8", errors="replace") if page_file.is_file() else ""
    problems = [] if rows else [f"{HISTORY_PATH} has no rows"]
    if not page:
        problems.append(f"{DASHBOARD_PATH} is missing")
    charts = re.findall(r'<svg class="(metric|drift)-chart" data-name="([^"]*)".*?</svg>', page, re.S)
    bodies = re.findall(r'<svg class="(?:metric|drift)-chart".*?</svg>', page, re.S)
    drawn = {f"{kind}:{name}": body for (kind, name), body in zip(charts, bodies, strict=True)}
    expected_fired = 0
    for kind, name in charts:
        points = drawn[f"{kind}:{name}"].count('<circle class="point')
        if points > len(rows):
            problems.append(f"{kind} chart {name!r} draws {points} points for {len(rows)} batches")
    for row in rows:
        expected_fired += sum(1 for m in (row.get("metrics") or {}).values() if isinstance(m, dict) and m.get("fired"))
    marked = sum(body.count('data-state="fired"') for key, body in drawn.items() if key.startswith("metric:"))
    if page and marked != expected_fired:
        problems.append(f"{expected_fired} metric alerts fired in the history but {marked} are marked on the page")
    if page and rows and not charts:
        problems.append("the page draws no chart")
    return {"rows": len(rows), "unreadable_lines": bad, "charts": len(charts), "alerts_marked": marked,
            "with_alerts": sum(1 for r in rows if r.get("alerts_fired")), "problems": problems, "ok": not problems}
