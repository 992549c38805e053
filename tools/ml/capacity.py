"""Resource and cost estimate from a MEASURED scoring throughput, extrapolated to the stated volume and window."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml.data import DataError, load_config, read_json, read_table
from tools.ml.model import ModelError, load_model
from tools.sandbox import run_sandboxed

__all__ = ["estimate", "estimate_capacity", "COST_PATH"]

COST_PATH = "reports/cost-estimate.json"
_HEADROOM = 0.5
"""Plan for the job to use at most half of the window, leaving room for retries and slow nights."""


def _measure_pipeline(ctx: ToolContext, config_path: str, rows: int) -> dict[str, Any] | None:
    if not (ctx.workspace / "pipelines/batch_scoring/__main__.py").is_file():
        return None
    # Workspace code runs in the shell sandbox, like any agent-run command.
    proc = run_sandboxed(["python", "-m", "pipelines.batch_scoring", "--config", config_path,
                          "--benchmark-rows", str(rows), "--log-level", "WARNING"], ctx.workspace, ctx.settings)
    if proc.exit_code != 0 or not proc.stdout.strip():
        return {"error": f"pipeline benchmark exited {proc.exit_code}: {proc.stderr[-500:]}"}
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except json.JSONDecodeError:
        return {"error": f"pipeline benchmark printed no JSON: {proc.stdout[-300:]}"}
    return {**result, "method": "python -m pipelines.batch_scoring --benchmark-rows (end to end: read, score, "
                                "monitor, write)"}


def _measure_model(ctx: ToolContext, config: dict[str, Any], rows: int) -> dict[str, Any]:
    loaded = load_model(ctx.workspace, str(config["model"]["path"]))
    frame = read_table(ctx.workspace, str(config["input"]["path"]))
    x = frame[loaded.info.features].to_numpy(dtype=float)
    x = np.tile(x, (math.ceil(rows / len(x)), 1))[:rows]
    started = time.perf_counter()
    loaded.predict_positive(x)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 4), "rows_per_second": round(rows / seconds, 1),
            "method": "model predict only (pipeline not generated yet): excludes I/O"}


def estimate(ctx: ToolContext, *, config_path: str, benchmark_rows: int = 200_000, expected_rows: int = 0,
             window_hours: float = 0.0, vcpu_hour_usd: float = 0.048, vcpus: int = 1) -> dict[str, Any]:
    """Measure throughput on the workspace data and say whether the stated volume fits the window."""
    config = load_config(ctx.workspace, config_path)
    alignment = read_json(ctx.workspace, ALIGNMENT_PATH)
    volume = expected_rows or int(config.get("expected_rows_per_night") or 0)
    window = (window_hours or float((config.get("schedule") or {}).get("window_hours") or 0)
              or float((alignment.get("constraints") or {}).get("window_hours") or 0))
    findings = []
    if not volume:
        findings.append({"severity": "medium", "title": "volume unknown",
                         "detail": f"set expected_rows_per_night in {config_path}; the benchmark size is used instead"})
        volume = benchmark_rows
    if not window:
        findings.append({"severity": "medium", "title": "window unknown", "detail": "no run window stated; assuming 2 h"})
        window = 2.0
    measured = _measure_pipeline(ctx, config_path, benchmark_rows)
    if measured is None or "error" in measured:
        if measured:
            findings.append({"severity": "medium", "title": "pipeline benchmark failed", "detail": measured["error"]})
        measured = _measure_model(ctx, config, benchmark_rows)
    rps = float(measured["rows_per_second"])
    hours = volume / rps / 3600 / vcpus
    fits = hours <= window
    workers = max(1, math.ceil(hours / (window * _HEADROOM)))
    peak = measured.get("peak_rss_mb")
    out = {
        "measured": measured, "expected_rows": volume, "window_hours": window, "vcpus": vcpus,
        "projected_hours": round(hours, 4), "projected_minutes": round(hours * 60, 2), "fits": fits,
        "margin_pct": round((1 - hours / window) * 100, 1),
        "recommended_workers": workers * vcpus if not fits else vcpus,
        "memory_request_mb": math.ceil(peak * 1.5) if peak else None,
        "memory_note": "chunked scoring keeps memory flat in the input size; request 1.5x the measured peak",
        "cost": {"vcpu_hour_usd": vcpu_hour_usd, "assumption": "on-demand vCPU price; override vcpu_hour_usd",
                 "per_run_usd": round(hours * vcpus * vcpu_hour_usd, 4),
                 "per_month_usd": round(hours * vcpus * vcpu_hour_usd * 30, 2)},
        "findings": findings,
    }
    out["verdict"] = (f"{volume:,} rows at {rps:,.0f} rows/s take {hours * 60:.1f} min on {vcpus} worker(s): "
                      + (f"fits the {window:g} h window with {out['margin_pct']}% margin" if fits else
                         f"does NOT fit the {window:g} h window; needs {workers * vcpus} parallel workers"))
    return out


@tool(parse_docstring=True)
def estimate_capacity(config_path: str = "pipelines/batch-scoring.yaml", benchmark_rows: int = 200_000,
                      expected_rows: int = 0, window_hours: float = 0.0, vcpu_hour_usd: float = 0.048,
                      workers: int = 1, *, ctx: Ctx) -> str:
    """Measure the batch pipeline's scoring throughput on the workspace data (input tiled to benchmark_rows),
    extrapolate to the stated nightly volume and window, and estimate resources and cost. Writes
    reports/cost-estimate.json. Raises the "infrastructure" failure mode when the run does not fit.

    Args:
        config_path: Workspace-relative pipeline YAML (expected_rows_per_night, schedule.window_hours).
        benchmark_rows: Rows to score for the measurement.
        expected_rows: Nightly volume; 0 to read expected_rows_per_night from the config.
        window_hours: Run window; 0 to read it from the config or the mission's constraints.
        vcpu_hour_usd: Price of one vCPU-hour used for the cost figure.
        workers: Parallel single-vCPU workers sharing the volume (partitioned input).
    """
    try:
        out = estimate(ctx, config_path=config_path, benchmark_rows=benchmark_rows, expected_rows=expected_rows,
                       window_hours=window_hours, vcpu_hour_usd=vcpu_hour_usd, vcpus=max(1, workers))
    except (ModelError, DataError, KeyError) as exc:
        return json.dumps({"status": "failed", "error": f"cannot measure throughput: {exc}"})
    ctx.write_text(COST_PATH, json.dumps(out, indent=2), kind="report")
    if not out["fits"]:
        ctx.signal("infrastructure", out["verdict"], projected_hours=out["projected_hours"],
                   window_hours=out["window_hours"], recommended_workers=out["recommended_workers"])
    return json.dumps({"status": "ok", "path": COST_PATH, **{k: out[k] for k in (
        "verdict", "fits", "projected_minutes", "window_hours", "margin_pct", "expected_rows",
        "recommended_workers", "memory_request_mb", "cost", "findings")},
        "rows_per_second": out["measured"]["rows_per_second"]})
