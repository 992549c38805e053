"""The Data Scientist as played by the built-in planner: data alignment, and remediation when the model
underperforms (a retrained, recalibrated candidate judged on held-out current rows)."""

from __future__ import annotations

from agents.playbooks import PLAYBOOKS
from agents.playbooks.base import Call, Finding, Finish, Playbook, View
from agents.playbooks.ml_engineer import as_dict, clauses, failed, findings_of

__all__ = ["align", "remediate"]


def align(view: View) -> Playbook:
    found = as_dict((yield Call("locate_inputs", {"inputs": list(view.mission.inputs)})))
    model, reference = found.get("model_path"), found.get("reference_path")
    if not model or not reference:
        return Finish(summary=f"Cannot align: model {model!r}, reference data {reference!r} not found in the workspace.",
                      findings=[Finding(title="inputs missing", severity="high",
                                        detail="the workspace needs a model folder and a reference dataset")],
                      status="blocked")
    current = found.get("current_path") or ""
    looks = [Call("profile_dataset", {"path": reference}), Call("inspect_model", {"path": model})]
    if current:
        looks.append(Call("profile_dataset", {"path": current}))
    profiled = [as_dict(r) for r in (yield looks)]
    result = as_dict((yield Call("align_data", {
        "model_path": model, "reference_path": reference, "current_path": current,
        "constraints": clauses(view), "label_column": found.get("label_column") or "",
        "segment_column": found.get("segment_column") or ""})))
    findings = findings_of(result) + [f for p in profiled for f in findings_of(p)]
    if failed(result):
        return Finish(summary="Alignment blocked: " + "; ".join(f"{f.title}: {f.detail}" for f in findings if f.severity == "high"),
                      findings=findings, artifacts=[result.get("path", "reports/alignment.json")], status="blocked")
    model_info = result.get("model") or {}
    datasets = "; ".join(f"{role} {d['rows']} rows sha256 {d['sha256'][:12]}" for role, d in (result.get("datasets") or {}).items())
    base = result.get("baseline") or {}
    if result.get("labelled"):
        figures = (f"baseline precision {base.get('precision')}, recall {base.get('recall')}, alert rate "
                   f"{base.get('alert_rate')}; precision floor {result.get('precision_floor')}; a window needs "
                   f"{result.get('min_labelled_rows')} labelled rows for the precision alert to mean anything")
    else:
        figures = (f"no labels: precision cannot be measured; baseline alert rate {base.get('alert_rate')}, "
                   f"monitoring falls back to an alert-rate ceiling of {result.get('alert_rate_ceiling')}")
    summary = (f"Model {model_info.get('name')} {model_info.get('version')} ({model_info.get('format')}, sha256 "
               f"{str(model_info.get('sha256'))[:12]}); datasets pinned: {datasets}; {figures}. Written to "
               f"{result.get('path')}.")
    return Finish(summary=summary, findings=findings, artifacts=[result.get("path", "reports/alignment.json")])


def remediate(view: View) -> Playbook:
    found = as_dict((yield Call("locate_inputs", {"inputs": list(view.mission.inputs)})))
    if not found.get("labelled") or not found.get("current_path"):
        return Finish(summary="The current batch has no labels: a candidate cannot be retrained or recalibrated; "
                              "collect labels for at least the minimum window before retraining.",
                      findings=[Finding(title="no labels", severity="high", detail="retraining needs labelled data")],
                      status="needs_input")
    # The candidate comes from the repository's own training pipeline, run in the sandbox: reproducible by anyone.
    # (Generated again even when implement did: the same inputs give the same files, and a replay the same calls.)
    made = as_dict((yield Call("generate_training_pipeline", {
        "model_path": found.get("model_path") or "", "reference_path": found.get("reference_path") or "",
        "current_path": found["current_path"], "label_column": found.get("label_column") or ""})))
    if failed(made):
        return Finish(summary=f"The training pipeline could not be generated: {made.get('error')}",
                      findings=findings_of(made), status="failed")
    result = as_dict((yield Call("run_training_pipeline", {"config_path": "pipelines/training.yaml"})))
    if failed(result):
        return Finish(summary=f"Retraining failed: {result.get('error')}", findings=findings_of(result), status="failed")
    cand, prod = result.get("candidate") or {}, result.get("production") or {}
    pipeline = result.get("pipeline") or {}
    summary = (f"Diagnosis: the monitored batch shifted away from the reference. `{pipeline.get('command')}` "
               f"(seed {pipeline.get('seed')}, data pinned by sha256) retrained {result['candidate_path']} on "
               f"{result.get('trained_rows')} rows (reference + two thirds of the labelled current batch) and "
               f"recalibrated its threshold. On {result.get('holdout_rows')} held-out current rows: candidate precision "
               f"{cand.get('precision')} / recall {cand.get('recall')} vs production {prod.get('precision')} / "
               f"{prod.get('recall')}; floor {result.get('precision_floor')}: "
               + ("met." if result.get("meets_floor") else "NOT met."))
    return Finish(summary=summary, artifacts=[*result.get("files", []), "reports/remediation.json"],
                  status="completed" if result.get("meets_floor") else "failed")


def _dispatch(view: View) -> Playbook:
    if view.reason == "underperforms":
        return (yield from remediate(view))
    return (yield from align(view))


PLAYBOOKS["data-scientist"] = {"align": align, "evaluate": _dispatch, "*": _dispatch}
