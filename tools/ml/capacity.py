"""Resource and cost estimate from a MEASURED scoring throughput, extrapolated to the stated volume and window."""

from __future__ import annotations

import json
import math
from typing import Any

from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet, RunPlan, constraints_from, format_duration
from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml.data import DataError, load_config, read_json
from tools.ml.gpu import gpu_plan
from tools.ml.model import locate_model
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
    # The workspace model is loaded and timed inside the sandbox only; the host gets the timing back.
    model_path = str((config.get("model") or {}).get("path") or "")
    data_path = str((config.get("input") or {}).get("path") or "")
    if not model_path or not data_path:
        raise DataError("the pipeline config names no model.path or input.path to measure", path="pipelines/",
                        fix="write model.path and input.path in the batch-scoring config")
    ref = locate_model(ctx.workspace, model_path)
    measured = sandboxed.ask(ctx, "benchmark", {"model": ref.spec(), "data": data_path, "rows": rows},
                             refs=[ref], paths=[data_path])
    return {"rows": int(measured["rows"]), "seconds": float(measured["seconds"]),
            "rows_per_second": float(measured["rows_per_second"]),
            "method": "model predict only, in the sandbox (pipeline not generated yet): excludes I/O"}


_BATCH_UNITS = {"rows", "records", "events", "transactions", "samples", "items", "documents", "images", "predictions",
                "scores", "lines", "messages"}


def _finding(severity: str, title: str, detail: str) -> dict[str, str]:
    return {"severity": severity, "title": title, "detail": detail}


def _mission_volume(cs: ConstraintSet, plan: RunPlan) -> tuple[int, str] | None:
    """Rows one run must score, from a stated batch volume ("1M rows per night", "10M records a day")."""
    for target in cs.throughput:
        if target.unit not in _BATCH_UNITS:
            continue
        if target.per in ("run", "night"):
            return int(target.amount), target.source_text
        if target.per_second is not None and plan.min_interval_seconds:
            rows = int(math.ceil(target.per_second * plan.min_interval_seconds))
            return rows, f"{target.source_text} over the {format_duration(plan.min_interval_seconds)} between runs"
    return None


def _window(window_hours: float, plan: RunPlan, alignment: dict[str, Any]) -> tuple[int, str]:
    """The run window in seconds and where it came from: the argument, the mission, the config, else default."""
    legacy = float((alignment.get("constraints") or {}).get("window_hours") or 0)  # alignment's older record
    if window_hours:
        return int(round(window_hours * 3600)), "argument"
    if plan.sources["window"] != "default" or not legacy:
        return plan.window_seconds, plan.sources["window"]
    return int(round(legacy * 3600)), "alignment"


def _budgets(out: dict[str, Any], cs: ConstraintSet, plan: RunPlan) -> list[dict[str, str]]:
    """Compare the cost and the measured memory with the mission's budgets; findings for each breach."""
    findings = []
    if cs.cost:
        budget = cs.cost
        if budget.currency == "USD":
            monthly = round(budget.per_month(plan.runs_per_month), 2)
            within = out["cost"]["per_month_usd"] <= monthly
            verdict = (f"{out['cost']['per_month_usd']} USD per month ({plan.runs_per_month:g} runs) is "
                       + ("within" if within else "OVER") + f" the budget of {budget.amount:g} USD per {budget.per}"
                       + (f" ({monthly} USD per month)" if budget.per != "month" else ""))
            out["budget"] = {"amount": budget.amount, "currency": "USD", "per": budget.per,
                             "per_month_usd": monthly, "within": within, "verdict": verdict}
            if not within:
                findings.append(_finding("high", "over the cost budget", verdict))
        else:
            verdict = (f"not compared: the budget is in {budget.currency} and the vCPU price in USD; "
                       "pass vcpu_hour_usd converted, or state the budget in USD")
            out["budget"] = {"amount": budget.amount, "currency": budget.currency, "per": budget.per,
                             "within": None, "verdict": verdict}
            findings.append(_finding("medium", "cost budget not compared", verdict))
    peak = out["measured"].get("peak_rss_mb")
    if cs.memory:
        limit = int(cs.memory.max_mib)
        out["memory_budget_mib"] = limit
        if peak and float(peak) > limit:
            findings.append(_finding("high", "over the memory budget",
                                     f"measured peak {peak} MiB exceeds {limit} MiB ({cs.memory.source_text!r})"))
        if out["memory_request_mb"]:
            out["memory_request_mb"] = min(out["memory_request_mb"], limit)
    return findings


def estimate(ctx: ToolContext, *, config_path: str, benchmark_rows: int = 200_000, expected_rows: int = 0,
             window_hours: float = 0.0, vcpu_hour_usd: float = 0.048, vcpus: int = 1,
             constraints: ConstraintSet | None = None) -> dict[str, Any]:
    """Measure throughput on the workspace data and say whether the stated volume fits the mission's window."""
    config = load_config(ctx.workspace, config_path)
    alignment = read_json(ctx.workspace, ALIGNMENT_PATH)
    cs = constraints if constraints is not None else constraints_from(None, stored=alignment.get("constraint_set"))
    plan = cs.run_plan(config.get("schedule"))
    findings = [_finding("medium", "schedule config unusable", problem) for problem in plan.problems]
    stated = _mission_volume(cs, plan)
    volume = expected_rows or (stated[0] if stated else 0) or int(config.get("expected_rows_per_night") or 0)
    window_seconds, window_source = _window(window_hours, plan, alignment)
    window = window_seconds / 3600
    if not volume:
        findings.append(_finding("medium", "volume unknown", f"set expected_rows_per_night in {config_path} or state "
                                 "the volume in the mission; the benchmark size is used instead"))
        volume = benchmark_rows
    if window_source == "default":
        findings.append(_finding("medium", "window unknown",
                                 f"no run window stated; assuming {format_duration(window_seconds)}"))
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
        "measured": measured, "expected_rows": volume, "volume_source": stated[1] if stated and not expected_rows
        else None, "window_hours": round(window, 4), "window_seconds": window_seconds, "window_source": window_source,
        "schedule": {"cron": plan.cron, "text": plan.schedule_text, "runs_per_month": plan.runs_per_month,
                     "source": plan.sources["schedule"]},
        "vcpus": vcpus, "projected_hours": round(hours, 4), "projected_minutes": round(hours * 60, 2), "fits": fits,
        "margin_pct": round((1 - hours / window) * 100, 1),
        "recommended_workers": workers * vcpus if not fits else vcpus,
        "memory_request_mb": math.ceil(peak * 1.5) if peak else None,
        "memory_note": "chunked scoring keeps memory flat in the input size; request 1.5x the measured peak",
        "cost": {"vcpu_hour_usd": vcpu_hour_usd, "assumption": "on-demand vCPU price; override vcpu_hour_usd",
                 "per_run_usd": round(hours * vcpus * vcpu_hour_usd, 4),
                 "runs_per_month": plan.runs_per_month,
                 "per_month_usd": round(hours * vcpus * vcpu_hour_usd * plan.runs_per_month, 2)},
        "findings": findings, "not_understood": list(cs.not_understood),
    }
    findings += _budgets(out, cs, plan)
    model = alignment.get("model") or {}
    texts = [*cs.clauses, *cs.not_understood, *([ctx.mission.text] if getattr(ctx.mission, "text", None) else [])]
    out["gpu"] = gpu_plan(ctx.workspace, model_path=str((config.get("model") or {}).get("path") or ""), texts=texts,
                          projected_hours=hours, runs_per_month=plan.runs_per_month,
                          model_note=f"a {model.get('format', 'joblib')} {model.get('estimator') or 'model'}")
    if out["gpu"]["needed"]:  # the cost line: the GPU's hours beside the vCPUs'
        out["cost"]["gpu"] = out["gpu"]["cost"]
    span = format_duration(window_seconds)
    out["verdict"] = (f"{volume:,} rows at {rps:,.0f} rows/s take {hours * 60:.1f} min on {vcpus} worker(s): "
                      + (f"fits the {span} window with {out['margin_pct']}% margin" if fits else
                         f"does NOT fit the {span} window; needs {workers * vcpus} parallel workers"))
    return out


@tool(parse_docstring=True)
def estimate_capacity(config_path: str = "pipelines/batch-scoring.yaml", benchmark_rows: int = 200_000,
                      expected_rows: int = 0, window_hours: float = 0.0, vcpu_hour_usd: float = 0.048,
                      workers: int = 1, constraints: list[str] | None = None, *, ctx: Ctx) -> str:
    """Measure the batch pipeline's scoring throughput on the workspace data (input tiled to benchmark_rows),
    extrapolate to the volume per run and the mission's run window, estimate resources and the monthly cost
    for the mission's schedule, and compare them with its memory and cost budgets. Writes
    reports/cost-estimate.json. Raises the "infrastructure" failure mode when the run does not fit.

    Args:
        config_path: Workspace-relative pipeline YAML (expected_rows_per_night, schedule.window_hours).
        benchmark_rows: Rows to score for the measurement.
        expected_rows: Rows per run; 0 to take the mission's stated volume, else expected_rows_per_night.
        window_hours: Run window; 0 to take the mission's constraints, else the config's schedule.window_hours.
        vcpu_hour_usd: Price of one vCPU-hour used for the cost figure.
        workers: Parallel single-vCPU workers sharing the volume (partitioned input).
        constraints: The mission's constraint clauses (e.g. ["within 30 minutes", "$200/month"]); empty to use
            those recorded at alignment.
    """
    # A model or config that cannot be used raises UnusableInput (ModelError/DataError) naming the file.
    stored = read_json(ctx.workspace, ALIGNMENT_PATH).get("constraint_set")
    out = estimate(ctx, config_path=config_path, benchmark_rows=benchmark_rows, expected_rows=expected_rows,
                   window_hours=window_hours, vcpu_hour_usd=vcpu_hour_usd, vcpus=max(1, workers),
                   constraints=constraints_from(constraints, stored=stored))
    ctx.write_text(COST_PATH, json.dumps(out, indent=2), kind="report")
    if not out["fits"]:
        ctx.signal("infrastructure", out["verdict"], projected_hours=out["projected_hours"],
                   window_hours=out["window_hours"], recommended_workers=out["recommended_workers"])
    return json.dumps({"status": "ok", "path": COST_PATH, **{k: out[k] for k in (
        "verdict", "fits", "projected_minutes", "window_hours", "window_seconds", "window_source", "schedule",
        "margin_pct", "expected_rows", "recommended_workers", "memory_request_mb", "cost", "findings",
        "not_understood", "gpu")}, "budget": out.get("budget"),
        "rows_per_second": out["measured"]["rows_per_second"]})
