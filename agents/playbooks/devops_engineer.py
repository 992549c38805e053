"""The DevOps Engineer as played by the built-in planner: measured capacity against the run window,
schedule, CI workflow and deployment notes; when the estimate does not fit, the sizing that does."""

from __future__ import annotations

from typing import Any

from agents.playbooks import PLAYBOOKS, streaming
from agents.playbooks.base import Call, Finding, Finish, Playbook, View
from agents.playbooks.ml_engineer import as_dict, clauses, failed, findings_of

__all__ = ["prepare_release", "resize"]


def prepare_release(view: View) -> Playbook:
    found = as_dict((yield Call("locate_inputs", {"inputs": list(view.mission.inputs)})))
    config = found.get("config_path") or "pipelines/batch-scoring.yaml"
    asked = clauses(view)
    cost = as_dict((yield Call("estimate_capacity", {"config_path": config, "constraints": asked})))
    schedule, ci = yield [Call("write_schedule", {"config_path": config, "constraints": asked}),
                          Call("write_ci_workflow", {"config_path": config, "constraints": asked})]
    schedule, ci = as_dict(schedule), as_dict(ci)
    notes = as_dict((yield Call("write_deployment_notes", {"config_path": config, "constraints": asked})))
    # The workflow just written, run here: its run: steps in the sandbox; the actions are reported as not run.
    ci_run = as_dict((yield Call("run_ci_workflow", {"path": ci.get("path") or ".github/workflows/batch-scoring.yml"})))
    summary = (f"Capacity: {cost.get('verdict', cost.get('error'))}; memory request {cost.get('memory_request_mb')} MiB; "
               f"cost {(cost.get('cost') or {}).get('per_run_usd')} USD per run. Schedule {schedule.get('path')} "
               f"(cron {schedule.get('schedule')}, deadline {schedule.get('deadline_seconds')} s, static check "
               f"{schedule.get('status')}); " + _retraining_text(schedule.get("retraining"))
               + f"CI {ci.get('path')} (static check {ci.get('status')}); deployment notes "
               f"{notes.get('path')} with rollout, rollback, monitoring and cost. " + _ci_text(ci_run))
    ok = (cost.get("fits") is True and (cost.get("budget") or {}).get("within") is not False
          and not failed(schedule) and not failed(ci) and not failed(ci_run))
    findings = findings_of(cost) + [Finding(title=f"CI step failed: {f.get('step')}", severity="high",
                                            detail=f"exit code {f.get('exit_code')}: {f.get('stderr_tail') or f.get('stdout_tail')}")
                                    for f in ci_run.get("failures") or []]
    return Finish(summary=summary, findings=findings,
                  artifacts=[p for p in (cost.get("path"), schedule.get("path"),
                                         (schedule.get("retraining") or {}).get("path"), ci.get("path"),
                                         notes.get("path"), ci_run.get("path")) if p],
                  status="completed" if ok else "failed")


def _retraining_text(retraining: dict[str, Any] | None) -> str:
    """The retraining job the mission asked for, if it did (figures from the tool)."""
    if not retraining:
        return ""
    if not retraining.get("path"):
        return f"Retraining {retraining.get('schedule_text')} asked for, but not scheduled (no training pipeline); "
    return (f"retraining {retraining.get('path')} (python -m pipelines.training, cron {retraining.get('schedule')}, "
            f"{retraining.get('schedule_text')}, deadline {retraining.get('deadline_seconds')} s); ")


def _ci_text(run: dict[str, Any]) -> str:
    """The local CI run in one sentence: each run: step's exit code and duration (figures from the tool)."""
    if run.get("run_steps") is None:
        return f"CI run locally could not run: {run.get('error')}."
    steps = ", ".join(f"{s['name']} exit {s['exit_code']} ({s['duration_s']} s)" for s in run.get("steps") or []
                      if s.get("exit_code") is not None)
    return (f"CI run locally: {run.get('passed')} of {run.get('run_steps')} run: steps passed ({steps}); "
            f"{run.get('not_run_locally')} uses: steps not run locally.")


def resize(view: View) -> Playbook:
    found = as_dict((yield Call("locate_inputs", {"inputs": list(view.mission.inputs)})))
    config = found.get("config_path") or "pipelines/batch-scoring.yaml"
    # The estimate that did not fit is on file; re-measuring it would raise the same failure mode again.
    text = (yield Call("read_file", {"path": "reports/cost-estimate.json", "max_lines": 2000}))
    body = text.split("\n", 1)[1] if isinstance(text, str) and "\n" in text else "{}"
    workers = int(as_dict(body).get("recommended_workers") or 1)
    asked = clauses(view)
    sized = as_dict((yield Call("estimate_capacity", {"config_path": config, "workers": workers,
                                                      "constraints": asked})))
    notes = as_dict((yield Call("write_deployment_notes", {"config_path": config, "constraints": asked})))
    return Finish(summary=f"Sizing: partition the input over {workers} workers: {sized.get('verdict')}; cost "
                          f"{(sized.get('cost') or {}).get('per_run_usd')} USD per run. Notes updated: {notes.get('path')}.",
                  artifacts=[p for p in (sized.get("path"), notes.get("path")) if p],
                  status="completed" if sized.get("fits") else "failed")


def _dispatch(view: View) -> Playbook:
    if view.reason == "infrastructure":
        return (yield from resize(view))
    if view.mission.serving_mode == "streaming":
        return (yield from streaming.prepare_release(view))
    return (yield from prepare_release(view))


PLAYBOOKS["devops-engineer"] = {"*": _dispatch}
