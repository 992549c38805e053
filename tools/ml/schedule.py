"""The run schedule (Kubernetes CronJob) and the CI workflow, rendered from templates with the mission's
constraints (schedule, run window, memory budget) and checked statically, including against those constraints."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet, RunPlan, constraints_from, format_duration
from orchestrator.cron import CronError, parse_cron
from tools.context import Ctx, ToolContext
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml.capacity import COST_PATH
from tools.ml.data import load_config, read_json
from tools.ml.report import TEMPLATES
from tools.ml.training import TRAINING_CONFIG

__all__ = ["write_schedule", "write_ci_workflow", "check_cronjob", "check_workflow", "release_constraints",
           "SCHEDULE_PATH", "RETRAIN_SCHEDULE_PATH", "CI_PATH"]

SCHEDULE_PATH = "deploy/cronjob.yaml"
RETRAIN_SCHEDULE_PATH = "deploy/retrain-cronjob.yaml"
_RETRAIN_DEADLINE_S = 4 * 3600
"""A training run's deadline when the mission states none (capped by the gap between retrainings)."""
CI_PATH = ".github/workflows/batch-scoring.yml"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True)
_DEFAULT_MEMORY_MB = 1024


def get_path(doc: Any, path: str) -> Any:
    """The value at a dotted path (``spec.template.spec.containers.0``) of a parsed manifest, or None."""
    for part in path.split("."):
        if isinstance(doc, list):
            doc = doc[int(part)] if len(doc) > int(part) else None
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def release_constraints(ctx: ToolContext, constraints: list[str] | None) -> ConstraintSet:
    """The mission's constraints for a release tool: the clauses passed, else those recorded at alignment."""
    return constraints_from(constraints, stored=read_json(ctx.workspace, ALIGNMENT_PATH).get("constraint_set"))


def check_cronjob(text: str, *, expected_schedule: str | None = None,
                  expected_deadline: int | None = None) -> list[str]:
    """Problems of a CronJob manifest: it must parse, carry the keys a cluster and a reviewer need, hold a valid
    cron expression and, when given, the schedule and deadline the mission's constraints call for."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    problems = []
    required = ["apiVersion", "kind", "metadata.name", "spec.schedule", "spec.concurrencyPolicy",
                "spec.jobTemplate.spec.activeDeadlineSeconds", "spec.jobTemplate.spec.template.spec.restartPolicy",
                "spec.jobTemplate.spec.template.spec.containers.0.image",
                "spec.jobTemplate.spec.template.spec.containers.0.resources.requests.memory",
                "spec.jobTemplate.spec.template.spec.securityContext.runAsNonRoot"]
    problems += [f"missing {key}" for key in required if get_path(doc, key) in (None, "")]
    if get_path(doc, "kind") != "CronJob":
        problems.append("kind is not CronJob")
    schedule = str(get_path(doc, "spec.schedule") or "")
    if len(schedule.split()) != 5:
        problems.append("spec.schedule is not a 5-field cron expression")
    else:
        try:
            parse_cron(schedule)
        except CronError as exc:
            problems.append(f"spec.schedule is not a valid cron expression: {exc}")
    if expected_schedule is not None and schedule != expected_schedule:
        problems.append(f"spec.schedule {schedule!r} is not the planned {expected_schedule!r}")
    deadline = get_path(doc, "spec.jobTemplate.spec.activeDeadlineSeconds")
    if expected_deadline is not None and deadline != expected_deadline:
        problems.append(f"activeDeadlineSeconds {deadline!r} is not the planned run window of {expected_deadline} s")
    if get_path(doc, "spec.jobTemplate.spec.template.spec.securityContext.runAsNonRoot") is not True:
        problems.append("pod does not require a non-root user")
    return problems


def check_workflow(text: str, commands: list[str]) -> list[str]:
    """Problems of a GitHub Actions workflow: parses, has triggers and jobs, and runs each validation command."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    problems = []
    if not isinstance(doc, dict) or not doc.get("jobs"):
        return ["no jobs"]
    if "on" not in doc and True not in doc:  # PyYAML reads the bare key `on` as boolean True
        problems.append("no triggers (on:)")
    runs = " ".join(str(step.get("run", "")) for job in doc["jobs"].values() for step in job.get("steps", []))
    problems += [f"validation command not run: {cmd!r}" for cmd in commands if cmd not in runs]
    return problems


def _cost(ctx: ToolContext) -> dict[str, Any]:
    return read_json(ctx.workspace, COST_PATH)


def _memory(cost: dict[str, Any], cs: ConstraintSet) -> tuple[int, int, list[str]]:
    """Memory request and limit (MiB): 1.5x the measured peak, within the mission's memory budget."""
    request = int(cost.get("memory_request_mb") or _DEFAULT_MEMORY_MB)
    if cs.memory is None:
        return request, request, []
    budget = int(cs.memory.max_mib)
    peak = (cost.get("measured") or {}).get("peak_rss_mb")
    problems = []
    if peak and float(peak) > budget:
        problems.append(f"measured peak memory {peak} MiB exceeds the mission's budget of {budget} MiB "
                        f"({cs.memory.source_text!r})")
    return min(request, budget), budget, problems


def _plan_fields(plan: RunPlan, cs: ConstraintSet) -> dict[str, Any]:
    return {"schedule": plan.cron, "schedule_text": plan.schedule_text, "timezone": plan.timezone,
            "deadline_seconds": plan.window_seconds, "window": plan.window_text, "sources": plan.sources,
            "assumptions": list(cs.notes), "not_understood": list(cs.not_understood)}


@tool(parse_docstring=True)
def write_schedule(config_path: str = "pipelines/batch-scoring.yaml", image: str = "",
                   constraints: list[str] | None = None, *, ctx: Ctx) -> str:
    """Write the run schedule as a Kubernetes CronJob (deploy/cronjob.yaml): schedule and job deadline
    (activeDeadlineSeconds = the run window) from the mission's constraints, else the pipeline config, else
    nightly at 01:00 within 2 h; memory from the measured cost estimate, capped by the mission's memory budget.
    Then check it statically (YAML parses, required keys, valid cron equal to the plan, non-root).

    Args:
        config_path: Workspace-relative pipeline YAML.
        image: Container image reference; defaults to <pipeline name>:<model version>.
        constraints: The mission's constraint clauses (e.g. ["weekly on Monday", "within 30 minutes"]); empty to
            use those recorded at alignment.
    """
    config = load_config(ctx.workspace, config_path)
    cs = release_constraints(ctx, constraints)
    plan = cs.run_plan(config.get("schedule"))
    request, limit, problems = _memory(_cost(ctx), cs)
    problems = [*plan.problems, *problems]
    name = str(config.get("name") or "batch-scoring")
    values = {"name": name, "cron": plan.cron, "timezone": plan.timezone, "schedule_text": plan.schedule_text,
              "deadline_seconds": plan.window_seconds, "window_text": plan.window_text,
              "image": image or f"{name}:1.0.0", "config_path": config_path,
              "cpu": str(_cost(ctx).get("recommended_workers") or 1), "memory_mb": request, "memory_limit_mb": limit,
              "gpu": gpu if (gpu := _cost(ctx).get("gpu") or {}).get("needed") else None}
    text = _ENV.get_template("cronjob.yaml.j2").render(**values)
    problems += check_cronjob(text, expected_schedule=plan.cron, expected_deadline=plan.window_seconds)
    ctx.write_text(SCHEDULE_PATH, text, kind="schedule")
    retraining, retrain_problems = _retraining(ctx, cs, values)
    problems += retrain_problems
    return json.dumps({"status": "ok" if not problems else "failed", "path": SCHEDULE_PATH, "problems": problems,
                       **_plan_fields(plan, cs), "memory_mb": request, "memory_limit_mb": limit,
                       "retraining": retraining})


def _retraining(ctx: ToolContext, cs: ConstraintSet, values: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                                     list[str]]:
    """The retraining CronJob the mission asks for ("retrain weekly on Sunday 02:00"): the training pipeline
    (``python -m pipelines.training``) in the same image, on its own schedule. None when nothing asks for one."""
    if cs.retraining is None:
        return None, []
    if not (ctx.workspace / TRAINING_CONFIG).is_file():
        return ({"path": None, "schedule": cs.retraining.cron, "schedule_text": cs.retraining.text},
                [f"the mission asks to retrain {cs.retraining.text}, but there is no training pipeline "
                 f"({TRAINING_CONFIG}) to schedule: generate it first"])
    gap = parse_cron(cs.retraining.cron).min_interval_seconds
    deadline = min(_RETRAIN_DEADLINE_S, gap) if gap else _RETRAIN_DEADLINE_S
    text = _ENV.get_template("cronjob.yaml.j2").render(**{
        **values, "name": f"{values['name']}-retrain", "title": "Retraining", "component": "training",
        "container": "trainer", "command": ["python", "-m", "pipelines.training"], "config_path": TRAINING_CONFIG,
        "cron": cs.retraining.cron, "timezone": cs.retraining.timezone, "schedule_text": cs.retraining.text,
        "deadline_seconds": deadline, "window_text": format_duration(deadline) + " (no training window stated)"})
    problems = check_cronjob(text, expected_schedule=cs.retraining.cron, expected_deadline=deadline)
    ctx.write_text(RETRAIN_SCHEDULE_PATH, text, kind="schedule")
    return {"path": RETRAIN_SCHEDULE_PATH, "schedule": cs.retraining.cron, "schedule_text": cs.retraining.text,
            "deadline_seconds": deadline}, [f"retraining CronJob: {p}" for p in problems]


@tool(parse_docstring=True)
def write_ci_workflow(schedule_path: str = SCHEDULE_PATH, config_path: str = "pipelines/batch-scoring.yaml",
                      constraints: list[str] | None = None, *, ctx: Ctx) -> str:
    """Write the CI workflow (.github/workflows/batch-scoring.yml) that runs the validation commands (dry run,
    tests, hadolint) and checks that the CronJob's schedule and deadline are the ones the mission's constraints
    call for; then check the workflow statically.

    Args:
        schedule_path: Workspace-relative CronJob manifest the workflow validates.
        config_path: Workspace-relative pipeline YAML (its schedule is used where the mission says nothing).
        constraints: The mission's constraint clauses; empty to use those recorded at alignment.
    """
    cs = release_constraints(ctx, constraints)
    plan = cs.run_plan(load_config(ctx.workspace, config_path).get("schedule"))
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    text = _ENV.get_template("ci-workflow.yml.j2").render(
        python=python, pytest_version=metadata.version("pytest"), schedule_path=schedule_path, cron=plan.cron,
        deadline_seconds=plan.window_seconds,
        schedule_text=plan.schedule_text, window_text=plan.window_text, constraints=cs.summary())
    commands = ["python -m pipelines.batch_scoring --dry-run", "python -m pytest -q tests"]
    problems = [*plan.problems, *check_workflow(text, commands)]
    expected = (f"EXPECTED_SCHEDULE: {json.dumps(plan.cron)}", f"EXPECTED_DEADLINE_SECONDS: {plan.window_seconds}")
    if not all(line in text for line in expected):
        problems.append("the schedule check does not compare the manifest with the planned schedule and window")
    ctx.write_text(CI_PATH, text, kind="ci")
    return json.dumps({"status": "ok" if not problems else "failed", "path": CI_PATH, "problems": problems,
                       "commands": commands + ["hadolint Dockerfile (failure-threshold warning)",
                                               f"{schedule_path}: schedule {plan.cron!r}, deadline "
                                               f"{plan.window_seconds} s"],
                       **_plan_fields(plan, cs)})
