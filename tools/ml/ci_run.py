"""The generated CI workflow, run here: each job's ``run:`` steps in order inside the sandbox, as a hosted runner
would run them (``bash -eo pipefail``, the step's and job's ``env:``), each with its exit code and duration.

``uses:`` steps are actions that need a hosted runner (checkout, setup-python, the hadolint action): they are
reported as not run locally, with what stands in for them here (the workspace is mounted where a checkout would
put it; the project's Python is the sandbox's; the Dockerfile was linted by hadolint at package time). As on a
hosted runner, a failed step skips the rest of its job. The sandbox has no network: ``pip`` runs with
``PIP_NO_INDEX=1``, so an install step passes only when the pinned versions are the ones installed.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from langchain_core.tools import tool

from orchestrator.errors import ToolError
from tools.context import Ctx, ToolContext
from tools.ml.data import read_json
from tools.ml.packaging import HADOLINT_PATH
from tools.ml.schedule import CI_PATH
from tools.redaction import redact
from tools.sandbox import run_sandboxed
from tools.workspace import resolve_in_workspace

__all__ = ["CI_RUN_PATH", "run_workflow", "run_ci_workflow", "ci_check"]

CI_RUN_PATH = "reports/ci-run.json"
_OFFLINE_ENV = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1", "CI": "true"}
_STAND_INS = {
    "actions/checkout": "the workspace is mounted at /workspace, where a checkout would put the repository",
    "actions/setup-python": "the sandbox runs the project's Python {python}",
    "hadolint/hadolint-action": "the Dockerfile was linted by hadolint at package time ({hadolint})",
}


def _env(*sections: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for section in sections:
        if isinstance(section, dict):
            out.update({str(k): "true" if v is True else "false" if v is False else str(v) for k, v in section.items()})
    return out


def _stand_in(uses: str, workspace: Path) -> str:
    action = uses.split("@", 1)[0]
    hadolint = read_json(workspace, HADOLINT_PATH)
    text = _STAND_INS.get(action, "an action needs a hosted runner")
    return text.format(python=f"{sys.version_info.major}.{sys.version_info.minor}",
                       hadolint=f"exit code {hadolint.get('exit_code')}, {len(hadolint.get('issues') or [])} issues, "
                                f"threshold {hadolint.get('threshold')}" if hadolint else "reports/hadolint.json missing")


def _script(env: dict[str, str], command: str) -> str:
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items() if k.replace("_", "").isalnum())
    return exports + command


def run_workflow(ctx: ToolContext, *, path: str = CI_PATH) -> dict[str, Any]:
    """Run the workflow's steps as described above; the result document (also written as ``reports/ci-run.json``)."""
    target = resolve_in_workspace(ctx.workspace, path)
    if not target.is_file():
        raise ToolError(f"no CI workflow at {path!r}: write it first (write_ci_workflow)")
    try:
        doc = yaml.safe_load(target.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ToolError(f"{path!r} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict) or not doc["jobs"]:
        raise ToolError(f"{path!r} has no jobs")
    jobs = []
    for job_id, job in doc["jobs"].items():
        job = job if isinstance(job, dict) else {}
        steps, failed = [], False
        for i, step in enumerate(job.get("steps") or []):
            step = step if isinstance(step, dict) else {}
            name = str(step.get("name") or step.get("uses") or f"step {i + 1}")
            if "uses" in step:
                steps.append({"name": name, "uses": str(step["uses"]), "status": "not_run_locally",
                              "stand_in": _stand_in(str(step["uses"]), ctx.workspace)})
                continue
            if "run" not in step:
                steps.append({"name": name, "status": "not_run_locally", "stand_in": "neither run: nor uses:"})
                continue
            if failed:
                steps.append({"name": name, "run": str(step["run"]), "status": "skipped",
                              "why": "an earlier step of the job failed"})
                continue
            env = {**_env(doc.get("env"), job.get("env"), step.get("env")), **_OFFLINE_ENV}
            result = run_sandboxed(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                                    _script(env, str(step["run"]))], ctx.workspace, ctx.settings)
            passed = result.exit_code == 0 and not result.timed_out
            failed = failed or not passed
            steps.append({"name": name, "run": str(step["run"]), "status": "passed" if passed else "failed",
                          "exit_code": result.exit_code, "duration_s": round(result.duration_s, 3),
                          "timed_out": result.timed_out, "stdout_tail": redact(result.stdout[-1200:]),
                          "stderr_tail": redact(result.stderr[-1200:])})
        jobs.append({"job": str(job_id), "runs_on": job.get("runs-on"), "steps": steps,
                     "status": "failed" if failed else "passed"})
    run_steps = [s for j in jobs for s in j["steps"] if "run" in s]
    out = {"workflow": path, "jobs": jobs, "run_steps": len(run_steps),
           "passed": sum(s["status"] == "passed" for s in run_steps),
           "failed": sum(s["status"] == "failed" for s in run_steps),
           "skipped": sum(s["status"] == "skipped" for s in run_steps),
           "not_run_locally": sum(s["status"] == "not_run_locally" for j in jobs for s in j["steps"]),
           "duration_s": round(sum(s.get("duration_s") or 0 for s in run_steps), 3),
           "how": "each run: step in the bubblewrap sandbox (no network: pip with PIP_NO_INDEX=1), bash -eo pipefail, "
                  "the workflow's, job's and step's env; uses: steps need a hosted runner"}
    out["all_run_steps_passed"] = bool(run_steps) and out["passed"] == len(run_steps)
    return out


@tool(parse_docstring=True)
def run_ci_workflow(path: str = CI_PATH, *, ctx: Ctx) -> str:
    """Run the generated CI workflow locally: every job's run: steps in order inside the sandbox (no network,
    bash -eo pipefail, the env: the workflow gives), each with its exit code and duration; uses: steps (actions
    that need a hosted runner) are reported as not run locally with what stands in for them. A failed step skips
    the rest of its job. Writes reports/ci-run.json; status "error" unless every run: step passed.

    Args:
        path: Workspace-relative workflow file, e.g. .github/workflows/batch-scoring.yml.
    """
    out = run_workflow(ctx, path=path)
    ctx.write_text(CI_RUN_PATH, json.dumps(out, indent=2), kind="report")
    steps = [{k: s.get(k) for k in ("name", "status", "exit_code", "duration_s")} for j in out["jobs"] for s in j["steps"]]
    failures = [{"step": s["name"], "exit_code": s.get("exit_code"), "stderr_tail": s.get("stderr_tail", "")[-400:],
                 "stdout_tail": s.get("stdout_tail", "")[-400:]} for j in out["jobs"] for s in j["steps"]
                if s["status"] == "failed"]
    return json.dumps({"status": "ok" if out["all_run_steps_passed"] else "error", "path": CI_RUN_PATH,
                       **{k: out[k] for k in ("workflow", "run_steps", "passed", "failed", "skipped", "not_run_locally",
                                              "duration_s")}, "steps": steps, "failures": failures})


def ci_check(workspace: Path) -> tuple[str, str, bool] | None:
    """The report's row for the local CI run (None when the workflow was not run)."""
    run = read_json(workspace, CI_RUN_PATH)
    if not run:
        return None
    steps = "; ".join(f"{s['name']}: exit {s.get('exit_code')} in {s.get('duration_s')} s" if "run" in s and
                      s["status"] != "skipped" else f"{s['name']}: {s['status'].replace('_', ' ')}"
                      for j in run.get("jobs") or [] for s in j.get("steps") or [])
    return (f"CI pipeline run (`{run.get('workflow')}`, locally)",
            f"{run.get('passed')} of {run.get('run_steps')} run: steps passed, {run.get('not_run_locally')} uses: steps "
            f"not run locally — {steps}", bool(run.get("all_run_steps_passed")))
