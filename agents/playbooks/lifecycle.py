"""The parts of the ML engineer's job around the scoring pipeline, as the built-in planner plays them: the
training pipeline and the feature store built at implement, and the training pipeline's re-run test at the
report (the DevOps Engineer runs the CI workflow locally at release). Each returns what it adds to the step
(summary sentences, findings, artifacts) or to the report's ``checks``; every figure comes from a tool result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.playbooks.base import Call, Finding, Playbook, View

__all__ = ["Added", "implement_extras", "report_checks"]


def _ml() -> Any:
    from agents.playbooks import ml_engineer  # the lead's helpers; imported late: ml_engineer imports this module

    return ml_engineer


@dataclass
class Added:
    """What the extras add to a step's Finish."""

    sentences: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Deliverables that did not pass their check: the step fails, naming them."""


def implement_extras(view: View, found: dict[str, Any]) -> Playbook:
    """The training pipeline (when the data is labelled) and the feature store, beside the scoring package.
    Returns :class:`Added`."""
    ml = _ml()
    added = Added()
    if found.get("labelled") and found.get("reference_path") and found.get("current_path") and found.get("model_path"):
        training = ml.as_dict((yield Call("generate_training_pipeline", {
            "model_path": found["model_path"], "reference_path": found["reference_path"],
            "current_path": found["current_path"], "label_column": found.get("label_column") or ""})))
        if ml.failed(training):
            added.findings.append(Finding(title="training pipeline not generated", severity="medium",
                                          detail=str(training.get("error"))[:600]))
            added.sentences.append(f"Training pipeline not generated: {training.get('error')}.")
        else:
            pinned = "; ".join(f"{role} {d['path']} sha256 {d['sha256'][:12]}"
                               for role, d in (training.get("pinned") or {}).items())
            added.sentences.append(f"Training pipeline {training.get('package')} generated ({training.get('config')}: "
                                   f"seed {training.get('seed')}, data pinned: {pinned}; test {training.get('tests')}).")
            added.artifacts += training.get("files") or []
    else:
        added.sentences.append("No training pipeline: the data has no labels to train on.")
    store = ml.as_dict((yield Call("build_feature_store", {"config_path": found.get("config_path")
                                                           or "pipelines/batch-scoring.yaml"})))
    if store.get("status") == "skipped":
        added.sentences.append(f"Feature store written to {store.get('repo')} but not applied: {store.get('reason')}.")
    elif ml.failed(store):
        added.failed.append("feature store")
        added.findings.append(Finding(title="feature store failed", severity="high",
                                      detail=str(store.get("error") or store.get("problems"))[:800]))
        added.sentences.append(f"Feature store FAILED: {store.get('error') or '; '.join(store.get('problems') or [])}.")
    else:
        back, dry = store.get("read_back") or {}, store.get("pipeline_dry_run") or {}
        added.sentences.append(
            f"Feature store {store.get('repo')} (Feast {store.get('feast_version')}) applied: entity "
            f"{store.get('entity')}, view {store.get('feature_view')} with {store.get('features')} features; "
            f"{store.get('materialised_rows')} rows materialised into SQLite; {back.get('matched')} of "
            f"{back.get('rows')} rows read back with max abs diff {back.get('max_abs_diff')}; scoring dry run from "
            f"the store exit code {dry.get('exit_code')}.")
        added.artifacts.append(store.get("path") or "reports/feature-store.json")
    return added


def report_checks(view: View) -> Playbook:
    """The report's own runs: the training pipeline's re-run test, unless the local CI run at release already ran
    the workspace's tests (written before this step: the decision is the same on a replay). Returns the ``checks``
    entries."""
    ml = _ml()
    checks: dict[str, Any] = {}
    if (view.workspace / "tests/test_training.py").is_file() and not (view.workspace / "reports/ci-run.json").is_file():
        tests = ml.as_dict((yield Call("run_tests", {"path": "tests/test_training.py"})))
        checks["training_tests"] = {k: tests.get(k) for k in ("passed", "failed", "errors", "skipped")}
    return checks
