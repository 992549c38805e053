"""The nightly schedule (Kubernetes CronJob) and the CI workflow, rendered from templates and checked statically."""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml.capacity import COST_PATH
from tools.ml.data import load_config
from tools.ml.report import TEMPLATES

__all__ = ["write_schedule", "write_ci_workflow", "check_cronjob", "check_workflow", "SCHEDULE_PATH", "CI_PATH"]

SCHEDULE_PATH = "deploy/cronjob.yaml"
CI_PATH = ".github/workflows/batch-scoring.yml"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True)
_CRON = {"nightly": "0 1 * * *", "daily": "0 1 * * *", "hourly": "0 * * * *", "weekly": "0 1 * * 0"}


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, list):
            doc = doc[int(part)] if len(doc) > int(part) else None
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def check_cronjob(text: str) -> list[str]:
    """Problems of a CronJob manifest: it must parse and carry the keys a cluster and a reviewer need."""
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
    problems += [f"missing {key}" for key in required if _get(doc, key) in (None, "")]
    if _get(doc, "kind") != "CronJob":
        problems.append("kind is not CronJob")
    if len(str(_get(doc, "spec.schedule") or "").split()) != 5:
        problems.append("spec.schedule is not a 5-field cron expression")
    if _get(doc, "spec.jobTemplate.spec.template.spec.securityContext.runAsNonRoot") is not True:
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
    path = ctx.workspace / COST_PATH
    return json.loads(path.read_text()) if path.is_file() else {}


@tool(parse_docstring=True)
def write_schedule(config_path: str = "pipelines/batch-scoring.yaml", image: str = "", *, ctx: Ctx) -> str:
    """Write the nightly schedule as a Kubernetes CronJob (deploy/cronjob.yaml) from the pipeline config
    (cron, timezone, window as the job deadline) and the cost estimate (memory, workers), then check it
    statically (YAML parses, required keys, non-root).

    Args:
        config_path: Workspace-relative pipeline YAML.
        image: Container image reference; defaults to <pipeline name>:<model version>.
    """
    config = load_config(ctx.workspace, config_path)
    schedule = config.get("schedule") or {}
    cost = _cost(ctx)
    window = float(schedule.get("window_hours") or cost.get("window_hours") or 2)
    name = str(config.get("name") or "batch-scoring")
    values = {"name": name, "cron": schedule.get("cron") or _CRON["nightly"], "timezone": schedule.get("timezone", "UTC"),
              "deadline_seconds": int(window * 3600), "image": image or f"{name}:1.0.0", "config_path": config_path,
              "cpu": str(cost.get("recommended_workers") or 1), "memory_mb": int(cost.get("memory_request_mb") or 1024)}
    text = _ENV.get_template("cronjob.yaml.j2").render(**values)
    problems = check_cronjob(text)
    ctx.write_text(SCHEDULE_PATH, text, kind="schedule")
    return json.dumps({"status": "ok" if not problems else "failed", "path": SCHEDULE_PATH, "problems": problems,
                       "schedule": values["cron"], "timezone": values["timezone"],
                       "deadline_seconds": values["deadline_seconds"], "memory_mb": values["memory_mb"]})


@tool(parse_docstring=True)
def write_ci_workflow(schedule_path: str = SCHEDULE_PATH, *, ctx: Ctx) -> str:
    """Write the CI workflow (.github/workflows/batch-scoring.yml) that runs the validation commands
    (dry run, tests, schedule check, hadolint) and check it statically.

    Args:
        schedule_path: Workspace-relative CronJob manifest the workflow validates.
    """
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    text = _ENV.get_template("ci-workflow.yml.j2").render(python=python, schedule_path=schedule_path)
    commands = ["python -m pipelines.batch_scoring --dry-run", "python -m pytest -q tests"]
    problems = check_workflow(text, commands)
    ctx.write_text(CI_PATH, text, kind="ci")
    return json.dumps({"status": "ok" if not problems else "failed", "path": CI_PATH, "problems": problems,
                       "commands": commands + ["hadolint Dockerfile (failure-threshold warning)"]})
