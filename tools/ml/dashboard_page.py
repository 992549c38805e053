"""The monitoring history (one JSON line per scored or evaluated batch) and its dashboard page.

This module uses the standard library only: the service imports it, and the batch-scoring generator copies
it verbatim into the workspace's package (``pipelines/batch_scoring/dashboard.py``), so the evaluation and
every production run append the same rows and draw the same page, with no service code in the workspace.

A row::

    {"batch": "current", "path": "data/current.csv", "sha256": "...", "time": "2026-01-01T01:00:00Z",
     "source": "evaluation" | "pipeline", "model_sha256": "...", "rows": 6000, "labelled_rows": 6000,
     "drift": {"statistic": "psi", "threshold": 0.2,
               "features": {"mean_radius": {"score": 0.01, "test": "ks", "p_value": 0.4, "drifted": false}}},
     "metrics": {"precision": {"value": 0.77, "threshold": 0.83, "direction": "below",
                               "alert": "precision_drop", "fired": true}},
     "alerts_fired": ["feature_drift", "precision_drop"]}

The page is one self-contained HTML file: inline SVG and CSS, no script, nothing fetched.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "append_rows", "read_history", "render_dashboard", "write_dashboard", "row_key"]

SCHEMA = 1
MAX_ROWS = 5000
"""Rows read back (the newest); a history is small, but a workspace file is untrusted input."""
_MAX_BYTES = 50 << 20


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """What makes a row new: who wrote it, the batch's bytes and the model's."""
    return str(row.get("source")), str(row.get("sha256")), str(row.get("model_sha256"))


def read_history(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The rows of the history file, oldest first, and how many lines could not be read."""
    if not path.is_file():
        return [], 0
    with path.open("rb") as handle:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            handle.seek(size - _MAX_BYTES)
            handle.readline()  # a partial line
        text = handle.read().decode("utf-8", errors="replace")
    rows, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("batch"), str):
            rows.append(row)
        else:
            bad += 1
    return rows[-MAX_ROWS:], bad


def append_rows(path: Path, rows: list[dict[str, Any]], *, skip_known: bool = False) -> list[dict[str, Any]]:
    """Append ``rows`` to the history (one JSON object per line); with ``skip_known``, rows whose
    :func:`row_key` is already there are left out (an evaluation run again on the same batch and model).
    Returns the rows appended."""
    known = {row_key(r) for r in read_history(path)[0]} if skip_known else set()
    new = [r for r in rows if row_key(r) not in known]
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            for row in new:
                handle.write(json.dumps({"schema": SCHEMA, **row}, sort_keys=True, default=str) + "\n")
    return new


# ---------------------------------------------------------------------------------------------- the page

_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 320, 150, 44, 12, 14, 30
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:1.4rem;margin:0 0 4px}h2{font-size:1.1rem;margin:28px 0 8px}p.meta{color:#5b6472;margin:0 0 12px}
.grid{display:flex;flex-wrap:wrap;gap:14px}.chart{border:1px solid #d9dde3;border-radius:6px;padding:6px 8px}
.chart h3{font-size:.9rem;margin:2px 0 4px;font-weight:600}.chart h3 small{color:#5b6472;font-weight:400}
svg text{font-size:10px;fill:#5b6472}.line{fill:none;stroke:#00798c;stroke-width:1.6}
.threshold{stroke:#d1495b;stroke-dasharray:5 4;stroke-width:1.2}.point{fill:#00798c}
.point.fired{fill:#d1495b;stroke:#7a1020;stroke-width:1.5}.axis{stroke:#9aa3ae;stroke-width:1}
table{border-collapse:collapse;font-size:.85rem}td,th{border-bottom:1px solid #e3e6ea;padding:4px 10px;text-align:left}
.fired-text{color:#b3261e;font-weight:600}.ok-text{color:#2e7d32}
"""


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(float(value)) else None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def metric_series(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each metric's points across the rows: value, threshold, direction and whether its alert fired."""
    names: list[str] = []
    for row in rows:
        for name in (row.get("metrics") or {}):
            if name not in names:
                names.append(name)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        points = []
        for row in rows:
            entry = (row.get("metrics") or {}).get(name) or {}
            points.append({"value": _num(entry.get("value")), "threshold": _num(entry.get("threshold")),
                           "direction": entry.get("direction"), "fired": bool(entry.get("fired")),
                           "alert": entry.get("alert")})
        if any(p["value"] is not None for p in points):
            out[name] = points
    return out


def drift_series(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each feature's drift score across the rows, with the threshold and whether it drifted."""
    names: list[str] = []
    for row in rows:
        for name in ((row.get("drift") or {}).get("features") or {}):
            if name not in names:
                names.append(name)
    out = {}
    for name in names:
        points = []
        for row in rows:
            drift = row.get("drift") or {}
            entry = (drift.get("features") or {}).get(name) or {}
            points.append({"value": _num(entry.get("score")), "threshold": _num(drift.get("threshold")),
                           "fired": bool(entry.get("drifted")), "test": entry.get("test"),
                           "p_value": _num(entry.get("p_value"))})
        out[name] = points
    return out


def _chart(title: str, subtitle: str, points: list[dict[str, Any]], labels: list[str], *, kind: str,
           name: str) -> str:
    """One line chart: a point per batch, the threshold dashed, points whose alert fired marked."""
    values = [p["value"] for p in points if p["value"] is not None]
    limits = [p["threshold"] for p in points if p["threshold"] is not None]
    low, high = min(values + limits, default=0.0), max(values + limits, default=1.0)
    if high - low < 1e-12:
        low, high = low - (abs(low) * 0.1 or 0.05), high + (abs(high) * 0.1 or 0.05)
    span = high - low
    low, high = low - 0.08 * span, high + 0.08 * span
    n = len(points)
    inner_w, inner_h = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B

    def x(i: int) -> float:
        return _PAD_L + (inner_w / 2 if n == 1 else inner_w * i / (n - 1))

    def y(v: float) -> float:
        return _PAD_T + inner_h * (1 - (v - low) / (high - low))

    parts = [f'<svg class="{kind}-chart" data-name="{html.escape(name)}" viewBox="0 0 {_W} {_H}" width="{_W}" '
             f'height="{_H}" role="img" aria-label="{html.escape(title)} over {n} batches">',
             f'<line class="axis" x1="{_PAD_L}" y1="{_PAD_T + inner_h}" x2="{_W - _PAD_R}" y2="{_PAD_T + inner_h}"/>',
             f'<line class="axis" x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{_PAD_T + inner_h}"/>',
             f'<text x="{_PAD_L - 4}" y="{_PAD_T + 4}" text-anchor="end">{_fmt(high)}</text>',
             f'<text x="{_PAD_L - 4}" y="{_PAD_T + inner_h}" text-anchor="end">{_fmt(low)}</text>']
    if limits:
        segments = [(i, p["threshold"]) for i, p in enumerate(points) if p["threshold"] is not None]
        path = " ".join(f"{'M' if j == 0 else 'L'}{x(i):.1f},{y(t):.1f}" for j, (i, t) in enumerate(segments))
        if len(segments) == 1:
            path = f"M{_PAD_L},{y(segments[0][1]):.1f} L{_W - _PAD_R},{y(segments[0][1]):.1f}"
        parts.append(f'<path class="threshold" d="{path}"><title>threshold {_fmt(limits[-1])}</title></path>')
    line = " ".join(f"{x(i):.1f},{y(p['value']):.1f}" for i, p in enumerate(points) if p["value"] is not None)
    if line:
        parts.append(f'<polyline class="line" points="{line}"/>')
    for i, p in enumerate(points):
        if p["value"] is None:
            continue
        state = "fired" if p["fired"] else "ok"
        tip = f"{labels[i]}: {_fmt(p['value'])}" + (f" (threshold {_fmt(p['threshold'])})" if p["threshold"] is not None
                                                    else "") + (" — ALERT FIRED" if p["fired"] else "")
        parts.append(f'<circle class="point{" fired" if p["fired"] else ""}" data-state="{state}" data-batch="{i}" '
                     f'cx="{x(i):.1f}" cy="{y(p["value"]):.1f}" r="{5 if p["fired"] else 3.5}">'
                     f'<title>{html.escape(tip)}</title></circle>')
    for i in sorted({0, n - 1}):
        anchor = "middle" if n == 1 else ("start" if i == 0 else "end")
        parts.append(f'<text x="{x(i):.1f}" y="{_H - 10}" text-anchor="{anchor}">{html.escape(labels[i][:18])}</text>')
    parts.append("</svg>")
    return (f'<figure class="chart"><h3>{html.escape(title)} <small>{html.escape(subtitle)}</small></h3>'
            + "".join(parts) + "</figure>")


def render_dashboard(rows: list[dict[str, Any]], *, title: str = "Monitoring dashboard") -> str:
    """The dashboard page for these history rows (oldest first)."""
    labels = [str(r.get("batch")) for r in rows]
    metrics, drift = metric_series(rows), drift_series(rows)
    fired_rows = [r for r in rows if r.get("alerts_fired")]
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f'<p class="meta">{len(rows)} batches, from {html.escape(labels[0]) if labels else "—"} to '
           f'{html.escape(labels[-1]) if labels else "—"}; {len(fired_rows)} with an alert fired. Each point is '
           'one batch (oldest left); the dashed line is the alert threshold; red points fired their alert.</p>']
    if not rows:
        out.append("<p>No batch has been evaluated or scored yet.</p></body></html>")
        return "\n".join(out)
    out.append('<h2>Metrics against their thresholds</h2><div class="grid" id="metrics">')
    for name, points in metrics.items():
        last = next((p for p in reversed(points) if p["threshold"] is not None), None)
        sub = (f"alert when {'below' if last['direction'] == 'below' else 'above'} {_fmt(last['threshold'])}"
               if last and last["direction"] in ("below", "above") else "no threshold")
        out.append(_chart(name, sub, points, labels, kind="metric", name=name))
    out.append('</div><h2>Feature drift over batches</h2><div class="grid" id="drift">')
    for name, points in drift.items():
        test = next((p["test"] for p in reversed(points) if p["test"]), None)
        out.append(_chart(name, f"PSI{'; ' + test + ' test beside it' if test else ''}", points, labels,
                          kind="drift", name=name))
    out.append('</div><h2>Batches</h2><table id="batches"><thead><tr><th>Batch</th><th>Time</th><th>Source</th>'
               "<th>Rows</th><th>Alerts fired</th></tr></thead><tbody>")
    for row in rows:
        fired = ", ".join(str(a) for a in row.get("alerts_fired") or [])
        out.append(f"<tr><td>{html.escape(str(row.get('batch')))}</td><td>{html.escape(str(row.get('time', '')))}</td>"
                   f"<td>{html.escape(str(row.get('source', '')))}</td><td>{html.escape(str(row.get('rows', '')))}</td>"
                   f"<td class=\"{'fired-text' if fired else 'ok-text'}\">{html.escape(fired or 'none')}</td></tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out)


def write_dashboard(history: Path, target: Path, *, title: str = "Monitoring dashboard") -> int:
    """Render the history at ``history`` into ``target``; returns the number of batches shown."""
    rows, _ = read_history(history)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_dashboard(rows, title=title), encoding="utf-8")
    return len(rows)
