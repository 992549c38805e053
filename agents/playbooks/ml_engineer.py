"""The ML engineer (lead) as played by the built-in planner: one playbook per procedure step.

Each playbook decides from the mission (serving mode, constraints, inputs), the workspace as the tools
describe it, and the results it gets back; every figure in a summary is taken from a tool result.
"""

from __future__ import annotations

import json
from typing import Any

from agents.playbooks import PLAYBOOKS
from agents.playbooks.base import Brief, Call, Finding, Finish, Handoff, HandoffResult, Playbook, View

__all__ = ["align", "design", "implement", "evaluate", "package", "release", "report", "as_dict", "findings_of"]

_SEVERITIES = {"info", "low", "medium", "high", "critical"}


def as_dict(result: Any) -> dict[str, Any]:
    """A tool result as a mapping: parsed JSON stays, an error text becomes ``{"error": text}``."""
    if isinstance(result, dict):
        return result
    if isinstance(result, str):
        try:
            parsed = json.loads(result)
        except ValueError:
            return {"error": result}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {"value": result}


def findings_of(result: dict[str, Any]) -> list[Finding]:
    """The tool's findings (and its error, if any) as typed findings."""
    out = [Finding(title=str(f.get("title", "finding")), detail=str(f.get("detail", "")),
                   severity=f.get("severity") if f.get("severity") in _SEVERITIES else "info")
           for f in result.get("findings") or [] if isinstance(f, dict)]
    if result.get("error"):
        out.append(Finding(title="tool error", detail=str(result["error"]), severity="high"))
    return out


def _located(view: View) -> Call:
    return Call("locate_inputs", {"inputs": list(view.mission.inputs)})


def _handoff_text(result: Any) -> tuple[str, list[Finding], list[str], str]:
    if isinstance(result, HandoffResult):
        return result.summary, list(result.findings), list(result.artifacts), result.status
    return str(result), [Finding(title="handoff failed", detail=str(result), severity="high")], [], "failed"


def align(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    yield Call("list_files", {"path": "."})
    yield Call("task_create", {"title": f"Productionize: {view.mission.objective[:80]}",
                               "notes": f"Mode {view.mission.serving_mode}; constraints: "
                                        + "; ".join(view.mission.constraints),
                               "links": [p for p in (found.get("model_path"), found.get("config_path")) if p]})
    brief = Brief(task="Align on dataset versions, metrics and acceptance thresholds: profile and fingerprint the "
                       "data, inspect the model, compute baseline metrics, derive thresholds from the constraints.",
                  context=f"Model: {found.get('model_path')}; reference: {found.get('reference_path')}; current: "
                          f"{found.get('current_path')}; label: {found.get('label_column')}; segment: "
                          f"{found.get('segment_column')}. Constraints: " + "; ".join(view.mission.constraints),
                  expected_output="reports/alignment.json with fingerprints, baseline and thresholds; the figures.")
    summary, findings, artifacts, status = _handoff_text((yield Handoff("data-scientist", brief)))
    return Finish(summary=f"Alignment with the Data Scientist: {summary}", findings=findings, artifacts=artifacts,
                  status="completed" if status == "completed" else "blocked")


def design(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    mode = view.mission.serving_mode
    doc = as_dict((yield Call("write_design_doc", {"objective": view.mission.objective, "serving_mode": mode,
                                                    "constraints": list(view.mission.constraints),
                                                    "inputs": list(view.mission.inputs)})))
    if mode == "online":
        brief = Brief(task="Build the online inference endpoint: generate the FastAPI app for the model with input "
                           "validation, health and metrics endpoints, and run its tests.",
                      context=f"Model: {found.get('model_path')}; sample data: {found.get('reference_path')}.",
                      expected_output="service/app.py, tests/test_service.py and the test counts.")
    else:
        brief = Brief(task="Review the batch scoring interface (inputs, outputs, failure behaviour); this is a batch "
                           "mission, so no online endpoint is built.",
                      context=f"Config: {found.get('config_path')}; model: {found.get('model_path')}.",
                      expected_output="docs/scoring-interface-review.md and the problems found.")
    summary, findings, artifacts, status = _handoff_text((yield Handoff("backend-developer", brief)))
    return Finish(summary=f"Design ({mode}) written to {doc.get('path', 'docs/design.md')}. Backend Developer: {summary}",
                  findings=findings, artifacts=[doc.get("path", "docs/design.md"), *artifacts],
                  status="completed" if status == "completed" else "failed")


def implement(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    config = found.get("config_path") or "pipelines/batch-scoring.yaml"
    gen = as_dict((yield Call("generate_batch_pipeline", {"config_path": config})))
    if gen.get("status") != "ok":
        return Finish(summary=f"Pipeline generation blocked: {gen.get('error') or 'see findings'}",
                      findings=findings_of(gen), artifacts=gen.get("files", []), status="blocked")
    dry = as_dict((yield Call("bash", {"command": "python -m pipelines.batch_scoring --dry-run"})))
    tests = as_dict((yield Call("run_tests", {"path": gen.get("tests", "tests/test_batch_scoring.py")})))
    ok = dry.get("exit_code") == 0 and tests.get("failed") == 0 and tests.get("errors") == 0 and tests.get("passed", 0) > 0
    summary = (f"Generated {gen.get('package')} ({len(gen.get('files', []))} files, alert rules: "
               f"{', '.join(gen.get('alert_rules', []))}). Dry run exit code {dry.get('exit_code')}; generated tests: "
               f"{tests.get('passed')} passed, {tests.get('failed')} failed, {tests.get('errors')} errors.")
    findings = findings_of(gen)
    if not ok:
        findings.append(Finding(title="pipeline validation failed", severity="high",
                                detail=f"dry run: {dry.get('stderr_tail', dry.get('error', ''))[-400:]}; "
                                       f"tests: {tests.get('failures') or tests.get('error')}"))
    return Finish(summary=summary, findings=findings, artifacts=gen.get("files", []),
                  status="completed" if ok else "failed")


def _alert_text(alerts: list[dict[str, Any]]) -> str:
    return "; ".join(f"{a['name']} {'FIRED' if a['fired'] else 'ok'} (value {a['value']}, threshold {a['threshold']})"
                     for a in alerts)


def evaluate(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    # A second round judges the Data Scientist's retrained candidate beside the monitored batch's figures.
    candidate = (found.get("candidate_path") or "") if view.round > 0 else ""
    ev = as_dict((yield Call("evaluate_model", {
        "model_path": found.get("model_path") or "", "reference_path": found.get("reference_path") or "",
        "current_path": found.get("current_path") or "", "label_column": found.get("label_column") or "",
        "segment_column": found.get("segment_column") or "", "candidate_path": candidate})))
    if ev.get("status") in ("blocked", None):
        return Finish(summary="Evaluation could not run: " + "; ".join(f.title + ": " + f.detail for f in findings_of(ev)),
                      findings=findings_of(ev), status="blocked")
    parts = [f"Evaluation {ev['status']}: {_alert_text(ev.get('alerts', []))}.",
             f"Drifted features: {', '.join(ev.get('drifted') or []) or 'none'}."]
    current = (ev.get("performance") or {}).get("current") or {}
    if ev.get("labelled"):
        parts.append(f"Current precision {current.get('precision')}, recall {current.get('recall')}.")
    else:
        parts.append(f"No labels: precision cannot be measured; alert rate {current.get('alert_rate')} is monitored.")
    if ev.get("bias"):
        parts.append("Bias disparity ratios: " + ", ".join(f"{k} {v}" for k, v in ev["bias"].items()) + ".")
    if ev.get("candidate"):
        cand = ev["candidate"]
        parts.append(f"Candidate {cand.get('path')} {'passes' if cand.get('passes') else 'fails'} "
                     f"(precision {(cand.get('performance') or {}).get('precision')}); selected model: {ev.get('selected_model')}.")
    findings = findings_of(ev) + [Finding(title=f"alert {a['name']} fired", severity="high" if a["name"].endswith("_drop") else "medium",
                                          detail=f"value {a['value']} vs threshold {a['threshold']}")
                                  for a in ev.get("alerts", []) if a.get("fired")]
    return Finish(summary=" ".join(parts), findings=findings, artifacts=ev.get("files", []))


def package(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    model = found.get("selected_model") or found.get("model_path") or ""
    config = found.get("config_path") or "pipelines/batch-scoring.yaml"
    onnx, container = yield [Call("export_onnx_model", {"model_path": model, "data_path": found.get("reference_path") or ""}),
                             Call("build_container", {"config_path": config})]
    onnx, container = as_dict(onnx), as_dict(container)
    entry = as_dict((yield Call("register_model", {"model_path": model})))
    manifest = as_dict((yield Call("write_manifest", {"model_path": model})))
    brief = Brief(task="Security review of the workspace before release: secrets, PII columns, unsafe model loading, "
                       "dependency licences.", context=f"Model {model}; image from Dockerfile; requirements.txt.",
                  expected_output="reports/security.json and the findings by severity.")
    summary, sec_findings, sec_artifacts, status = _handoff_text((yield Handoff("security-expert", brief)))
    hadolint = container.get("hadolint") or {}
    text = (f"ONNX export {onnx.get('status')}: max abs score diff {onnx.get('max_abs_score_diff')}, labels identical "
            f"{onnx.get('labels_identical')} on {onnx.get('rows_compared')} rows. Dockerfile: hadolint exit code "
            f"{hadolint.get('exit_code')} with {len(hadolint.get('issues') or [])} issues, runs as {container.get('user')}. "
            f"Registry entry {entry.get('entry')} ({entry.get('name')} {entry.get('version')}). Manifest "
            f"{manifest.get('path')} ({manifest.get('files_hashed')} files hashed). Security: {summary}")
    ok = onnx.get("status") == "ok" and container.get("status") == "ok" and entry.get("status") == "ok"
    findings = findings_of(onnx) + findings_of(entry) + sec_findings
    return Finish(summary=text, findings=findings,
                  artifacts=[p for p in (onnx.get("onnx"), "Dockerfile", entry.get("entry"), manifest.get("path")) if p]
                  + sec_artifacts, status="completed" if ok and status == "completed" else "failed")


def release(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    brief = Brief(task="Prepare the release: measured-throughput resource and cost estimate against the run window, "
                       "nightly schedule, CI workflow, rollout/rollback plan and deployment notes.",
                  context=f"Config {found.get('config_path')}; expected rows per night "
                          f"{found.get('expected_rows_per_night')}; schedule {found.get('schedule')}; constraints: "
                          + "; ".join(view.mission.constraints),
                  expected_output="reports/cost-estimate.json, deploy/cronjob.yaml, .github/workflows/*.yml, "
                                  "docs/deployment-notes.md and the fit verdict.")
    summary, findings, artifacts, status = _handoff_text((yield Handoff("devops-engineer", brief)))
    return Finish(summary=f"Release prepared by DevOps: {summary}", findings=findings, artifacts=artifacts,
                  status="completed" if status == "completed" else "failed")


def report(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    checks: dict[str, Any] = {}
    if found.get("config_path"):
        dry = as_dict((yield Call("bash", {"command": "python -m pipelines.batch_scoring --dry-run"})))
        tests = as_dict((yield Call("run_tests", {"path": "tests/test_batch_scoring.py"})))
        checks["dry_run_exit_code"] = dry.get("exit_code")
        checks["pipeline_tests"] = {k: tests.get(k) for k in ("passed", "failed", "errors")}
    if view.mission.serving_mode == "online":
        svc = as_dict((yield Call("run_tests", {"path": "tests/test_service.py"})))
        checks["service_tests"] = {k: svc.get(k) for k in ("passed", "failed", "errors")}
    rep = as_dict((yield Call("write_mission_report", {"objective": view.mission.objective, "checks": checks})))
    failed = rep.get("failed_checks") or []
    # Close the tracking task opened in align, linked to what the mission delivered.
    tasks = as_dict((yield Call("task_list"))).get("tasks") or []
    tracking = next((t for t in tasks if str(t.get("title", "")).startswith("Productionize:")), None)
    if tracking is not None:
        links = [p for p in (rep.get("path"), "docs/deployment-notes.md", "reports/evaluation.json")
                 if p and (view.workspace / p).is_file()]
        yield Call("task_update", {"task_id": tracking["id"], "status": "blocked" if failed else "done",
                                   "notes": f"{len(failed)} failed checks", "links": links})
    summary = (f"Mission report {rep.get('path')}: {rep.get('checks')} checks, {len(failed)} failed; "
               f"{rep.get('deliverables')} deliverables linked; not produced: {', '.join(rep.get('not_produced') or []) or 'none'}.")
    return Finish(summary=summary, artifacts=[rep.get("path", "reports/mission-report.md")],
                  findings=[Finding(title="check failed", detail=row, severity="high") for row in failed])


PLAYBOOKS["ml-engineer"] = {"align": align, "design": design, "implement": implement, "evaluate": evaluate,
                            "package": package, "release": release, "report": report}
