"""The ML engineer (lead) as played by the built-in planner: one playbook per procedure step.

Each playbook decides from the mission (serving mode, constraints, inputs), the workspace as the tools
describe it, and the results it gets back; every figure in a summary is taken from a tool result.
"""

from __future__ import annotations

import json
from typing import Any

from agents.playbooks import PLAYBOOKS, lifecycle, streaming
from agents.playbooks.base import Brief, Call, Finding, Finish, Handoff, HandoffResult, Playbook, View
from agents.playbooks.instructions import CLAUSES_MARK, read_instructions
from orchestrator.constraints import parse_constraints
from tools.ml.shadow import agreement_text

__all__ = ["align", "design", "implement", "evaluate", "package", "release", "report", "manual_plan", "as_dict",
           "findings_of", "failed", "clauses"]

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


def failed(result: dict[str, Any]) -> bool:
    """True when a tool result is an error (tools raise; the executor turns it into ``Error: ...``)."""
    return bool(result.get("error")) or result.get("status") in ("failed", "blocked", "error")


def findings_of(result: dict[str, Any]) -> list[Finding]:
    """The tool's findings (and its error, if any) as typed findings."""
    out = [Finding(title=str(f.get("title", "finding")), detail=str(f.get("detail", "")),
                   severity=f.get("severity") if f.get("severity") in _SEVERITIES else "info")
           for f in result.get("findings") or [] if isinstance(f, dict)]
    if result.get("error"):
        out.append(Finding(title="tool error", detail=str(result["error"]), severity="high"))
    return out


def clauses(view: View) -> list[str]:
    """The constraint clauses in force, as tools take them: the mission's (its Constraints line and free text)
    amended by the user's messages so far; a sub-agent takes those its brief carries."""
    if view.brief is not None and CLAUSES_MARK in view.brief.context:
        carried = view.brief.context.split(CLAUSES_MARK, 1)[1]
        return [c.strip() for c in carried.split(" | ") if c.strip()]
    return list(read_instructions(view.mission, view.instructions).clauses)


def _carried(view: View) -> str:
    """The clauses in force, for a brief's context (see :func:`clauses`)."""
    return f" {CLAUSES_MARK}" + " | ".join(clauses(view))


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
                                        + "; ".join(view.mission.constraint_set.summary()),
                               "links": [p for p in (found.get("model_path"), found.get("config_path")) if p]})
    brief = Brief(task="Align on dataset versions, metrics and acceptance thresholds: profile and fingerprint the "
                       "data, inspect the model, compute baseline metrics, derive thresholds from the constraints.",
                  context=f"Model: {found.get('model_path')}; reference: {found.get('reference_path')}; current: "
                          f"{found.get('current_path')}; label: {found.get('label_column')}; segment: "
                          f"{found.get('segment_column')}.{_carried(view)}",
                  expected_output="reports/alignment.json with fingerprints, baseline and thresholds; the figures.")
    summary, findings, artifacts, status = _handoff_text((yield Handoff("data-scientist", brief)))
    done = status == "completed"
    unclear = view.mission.constraint_set.not_understood
    if unclear:  # asked back, never dropped: the user reads this in the run and can answer with a message
        summary += (" Constraints I did not understand, please restate them: "
                    + "; ".join(map(str, unclear)) + ".")
    return Finish(summary=f"Alignment with the Data Scientist: {summary}", findings=findings, artifacts=artifacts,
                  status="completed" if done else "blocked",
                  reason="" if done else f"the Data Scientist could not align ({status}): {summary}")


def design(view: View) -> Playbook:
    if view.mission.serving_mode == "streaming":
        return (yield from streaming.design(view))
    found = as_dict((yield _located(view)))
    mode = view.mission.serving_mode
    doc = as_dict((yield Call("write_design_doc", {"objective": view.mission.objective, "serving_mode": mode,
                                                    "constraints": clauses(view),
                                                    "inputs": list(view.mission.inputs)})))
    if mode == "online":
        brief = Brief(task="Build the online inference endpoint: generate the FastAPI app for the model with input "
                           "validation, health and metrics endpoints, run its tests, and load-test it on loopback "
                           "against the mission's latency targets.",
                      context=f"Model: {found.get('model_path')}; sample data: {found.get('reference_path')}."
                              f"{_carried(view)}",
                      expected_output="service/app.py, tests/test_service.py, the test counts and "
                                      "reports/load-test.json with p50/p95 latency against the targets.")
    else:
        brief = Brief(task="Review the batch scoring interface (inputs, outputs, failure behaviour); this is a batch "
                           "mission, so no online endpoint is built.",
                      context=f"Config: {found.get('config_path')}; model: {found.get('model_path')}.",
                      expected_output="docs/scoring-interface-review.md and the problems found.")
    summary, findings, artifacts, status = _handoff_text((yield Handoff("backend-developer", brief)))
    problems = [f"design document: {doc['error']}"] if failed(doc) else []
    if status != "completed":  # the serious findings say why in a line (a missed latency target); else the summary
        why = "; ".join(f"{f.title}: {f.detail}" for f in findings if f.severity in ("high", "critical"))
        problems.append(f"Backend Developer {status}: {why or summary}")
    return Finish(summary=f"Design ({mode}) written to {doc.get('path', 'docs/design.md')}. Backend Developer: {summary}",
                  findings=findings + findings_of(doc), artifacts=[p for p in (doc.get("path"), *artifacts) if p],
                  status="failed" if problems else "completed", reason="; ".join(problems))


def implement(view: View) -> Playbook:
    if view.mission.serving_mode == "streaming":
        return (yield from streaming.implement(view))
    found = as_dict((yield _located(view)))
    config = found.get("config_path") or "pipelines/batch-scoring.yaml"
    gen = as_dict((yield Call("generate_batch_pipeline", {"config_path": config})))
    if failed(gen):
        why = gen.get("error") or "; ".join(f.detail for f in findings_of(gen)) or "see findings"
        return Finish(summary=f"Pipeline generation blocked: {why}", findings=findings_of(gen),
                      artifacts=gen.get("files", []), status="blocked", reason=f"pipeline generation: {why}")
    dry = as_dict((yield Call("bash", {"command": "python -m pipelines.batch_scoring --dry-run"})))
    tests = as_dict((yield Call("run_tests", {"path": gen.get("tests", "tests/test_batch_scoring.py")})))
    ok = dry.get("exit_code") == 0 and tests.get("failed") == 0 and tests.get("errors") == 0 and tests.get("passed", 0) > 0
    summary = (f"Generated {gen.get('package')} ({len(gen.get('files', []))} files, alert rules: "
               f"{', '.join(gen.get('alert_rules', []))}). Dry run exit code {dry.get('exit_code')}; generated tests: "
               f"{tests.get('passed')} passed, {tests.get('failed')} failed, {tests.get('errors')} errors.")
    findings = findings_of(gen)
    added = yield from lifecycle.implement_extras(view, found)  # training pipeline (and feature store) beside it
    summary = " ".join([summary, *added.sentences])
    findings += added.findings
    pipeline_ok, ok = ok, ok and not added.failed
    if not pipeline_ok:
        findings.append(Finding(title="pipeline validation failed", severity="high",
                                detail=f"dry run: {dry.get('stderr_tail', dry.get('error', ''))[-400:]}; "
                                       f"tests: {tests.get('failures') or tests.get('error')}"))
    return Finish(summary=summary, findings=findings, artifacts=gen.get("files", []) + added.artifacts,
                  status="completed" if ok else "failed",
                  reason="" if ok else f"the generated pipeline does not pass its checks: dry run exit code "
                                       f"{dry.get('exit_code')}, tests {tests.get('passed')} passed, "
                                       f"{tests.get('failed')} failed, {tests.get('errors')} errors"
                                       + (f"; failed: {', '.join(added.failed)}" if added.failed else ""))


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
    if failed(ev) or ev.get("status") is None:
        why = "; ".join(f.title + ": " + f.detail for f in findings_of(ev)) or "no result"
        return Finish(summary=f"Evaluation could not run: {why}", findings=findings_of(ev), status="blocked",
                      reason=f"evaluation could not run: {why}")
    parts = [f"Evaluation {ev['status']}: {_alert_text(ev.get('alerts', []))}.",
             f"Drifted features: {', '.join(ev.get('drifted') or []) or 'none'}."]
    current = (ev.get("performance") or {}).get("current") or {}
    if ev.get("labelled"):
        parts.append(f"Current precision {current.get('precision')}, recall {current.get('recall')}.")
    else:
        parts.append(f"No labels: precision cannot be measured; alert rate {current.get('alert_rate')} is monitored.")
    bias = ev.get("bias") or {}
    if bias:
        parts.append(f"Bias across {', '.join(map(str, bias.get('sensitive_features') or [])) or 'the named groups'}: "
                     + ("passes" if bias.get("passes") else "FAILS")
                     + (f" (worst {bias.get('worst_metric')} ratio {bias.get('worst_ratio')} on "
                        f"{bias.get('worst_feature')})" if bias.get("worst_metric") else "") + ".")
    if ev.get("candidate"):
        cand = ev["candidate"]
        parts.append(f"Candidate {cand.get('path')} {'passes' if cand.get('passes') else 'fails'} "
                     f"(precision {(cand.get('performance') or {}).get('precision')}); selected model: {ev.get('selected_model')}.")
    findings = findings_of(ev) + [Finding(title=f"alert {a['name']} fired", severity="high" if a["name"].endswith("_drop") else "medium",
                                          detail=f"value {a['value']} vs threshold {a['threshold']}")
                                  for a in ev.get("alerts", []) if a.get("fired")]
    artifacts = list(ev.get("files", []))
    if found.get("candidate_path"):  # a candidate (retrained, or given): shadow it beside production on the same rows
        shadow = as_dict((yield Call("compare_shadow", {
            "model_path": found.get("model_path") or "", "candidate_path": found["candidate_path"],
            "current_path": found.get("current_path") or "", "label_column": found.get("label_column") or "",
            "constraints": clauses(view)})))
        parts.append(_shadow_text(shadow))
        findings += findings_of(shadow)
        if not failed(shadow):
            artifacts.append(shadow.get("path", "reports/shadow-comparison.json"))
            if shadow.get("decision") != "promote":
                findings.append(Finding(title="shadow comparison: hold the candidate", severity="high",
                                        detail="gates not met: " + "; ".join(shadow.get("failed_gates") or [])))
    return Finish(summary=" ".join(parts), findings=findings, artifacts=artifacts)


def _shadow_text(shadow: dict[str, Any]) -> str:
    """The shadow comparison's figures in one sentence (every figure from the tool's result)."""
    if failed(shadow):
        return f"Shadow comparison could not run: {shadow.get('error')}."
    deltas = ", ".join(f"{name} {m['production']} -> {m['candidate']} ({m['delta']:+.4f}"
                       + (f", 95% interval [{m['interval']['low']:+.4f}, {m['interval']['high']:+.4f}]"
                          if m.get("interval") else "") + ")" for name, m in (shadow.get("metrics") or {}).items())
    latency = shadow.get("latency") or {}
    return (f"Shadow comparison on {shadow.get('which_rows')}: {agreement_text(shadow.get('agreement'))}; "
            f"{deltas or 'no metric'}; "
            f"p95 latency per row {(latency.get('production') or {}).get('p95_ms')} ms (production) vs "
            f"{(latency.get('candidate') or {}).get('p95_ms')} ms (candidate); decision: {shadow.get('decision')}.")


def package(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    model = found.get("selected_model") or found.get("model_path") or ""
    config = found.get("config_path") or "pipelines/batch-scoring.yaml"
    export = Call("export_onnx_model", {"model_path": model, "data_path": found.get("reference_path") or ""})
    if read_instructions(view.mission, view.instructions).skip_container:  # the user asked for no image
        onnx, container = as_dict((yield export)), {"status": "skipped", "user": None}
    else:
        onnx, container = yield [export, Call("build_container", {"config_path": config})]
        onnx, container = as_dict(onnx), as_dict(container)
    entry = as_dict((yield Call("register_model", {"model_path": model})))
    manifest = as_dict((yield Call("write_manifest", {"model_path": model})))
    brief = Brief(task="Security review of the workspace before release: secrets, PII columns, unsafe model loading, "
                       "dependency licences.", context=f"Model {model}; image from Dockerfile; requirements.txt.",
                  expected_output="reports/security.json and the findings by severity.")
    summary, sec_findings, sec_artifacts, status = _handoff_text((yield Handoff("security-expert", brief)))
    hadolint = container.get("hadolint") or {}
    onnx_text = (f"ONNX export unsupported ({onnx.get('reason')}): the image serves {onnx.get('source')}"
                 if onnx.get("status") == "unsupported" else
                 f"ONNX export {onnx.get('status')}: max abs score diff {onnx.get('max_abs_score_diff')}, labels "
                 f"identical {onnx.get('labels_identical')} on {onnx.get('rows_compared')} rows")
    text = (f"{onnx_text}. Dockerfile: hadolint exit code "
            f"{hadolint.get('exit_code')} with {len(hadolint.get('issues') or [])} issues, runs as {container.get('user')}. "
            f"Registry entry {entry.get('entry')} ({entry.get('name')} {entry.get('version')}). Manifest "
            f"{manifest.get('path')} ({manifest.get('files_hashed')} files hashed). Security: {summary}")
    problems = [f"{name}: {r.get('error') or r.get('status')}" for name, r in
                (("ONNX export", onnx), ("container", container), ("registry", entry), ("manifest", manifest))
                if failed(r)]
    if status != "completed":
        problems.append(f"security review {status}: {summary}")
    if onnx.get("status") == "unsupported" and container.get("status") == "skipped":
        problems.append("nothing packaged: the model has no ONNX form and the user asked for no image")
    findings = findings_of(onnx) + findings_of(entry) + sec_findings
    return Finish(summary=text, findings=findings,
                  artifacts=[p for p in (onnx.get("onnx"), "Dockerfile" if container.get("status") != "skipped" else None,
                                         entry.get("entry"), manifest.get("path")) if p]
                  + sec_artifacts, status="failed" if problems else "completed", reason="; ".join(problems))


def release(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    brief = Brief(task="Prepare the release: measured-throughput resource and cost estimate against the run window, "
                       "the schedule the constraints state, CI workflow, rollout/rollback plan and deployment notes.",
                  context=f"Config {found.get('config_path')}; expected rows per night "
                          f"{found.get('expected_rows_per_night')}; schedule {found.get('schedule')}; constraints: "
                          + "; ".join(view.mission.constraint_set.summary()) + f".{_carried(view)}",
                  expected_output="reports/cost-estimate.json, deploy/cronjob.yaml, .github/workflows/*.yml, "
                                  "docs/deployment-notes.md and the fit verdict.")
    if view.mission.serving_mode == "streaming":  # a Deployment and its rollout, not a CronJob
        brief = streaming.release_brief(view, found)
    summary, findings, artifacts, status = _handoff_text((yield Handoff("devops-engineer", brief)))
    done = status == "completed"
    return Finish(summary=f"Release prepared by DevOps: {summary}", findings=findings, artifacts=artifacts,
                  status="completed" if done else "failed",
                  reason="" if done else f"the release plan is not ready ({status}): {summary}")


def report(view: View) -> Playbook:
    found = as_dict((yield _located(view)))
    checks: dict[str, Any] = {}
    # The local CI run at release ran the dry run and every workspace test on these same files: its report row
    # carries them. Without it (the release stopped before), the report runs them itself. The file was written
    # before this step, so a replay decides the same.
    ci_ran = (view.workspace / "reports/ci-run.json").is_file()
    if found.get("config_path") and not ci_ran:
        dry = as_dict((yield Call("bash", {"command": "python -m pipelines.batch_scoring --dry-run"})))
        tests = as_dict((yield Call("run_tests", {"path": "tests/test_batch_scoring.py"})))
        checks["dry_run_exit_code"] = dry.get("exit_code")
        checks["pipeline_tests"] = {k: tests.get(k) for k in ("passed", "failed", "errors")}
    if view.mission.serving_mode == "online" and not ci_ran:
        svc = as_dict((yield Call("run_tests", {"path": "tests/test_service.py"})))
        checks["service_tests"] = {k: svc.get(k) for k in ("passed", "failed", "errors")}
    if view.mission.serving_mode == "streaming":
        checks.update((yield from streaming.report_checks(view)))
    checks.update((yield from lifecycle.report_checks(view)))  # the training pipeline's re-run test
    # The procedure's own outcomes are checks too: a step a person let pass as failed is not a passed check.
    checks["steps"] = {step: {"status": status, "reason": reason} for step, status, reason in view.outcomes}
    extra: list[str] = []
    if read_instructions(view.mission, view.instructions).add_readme:  # the user asked for one during the run
        written = as_dict((yield Call("write_file", {"path": "pipelines/README.md", "content": _readme(view, found)})))
        extra = [] if failed(written) else ["pipelines/README.md"]
    rep = as_dict((yield Call("write_mission_report", {"objective": view.mission.objective, "checks": checks})))
    failed_checks = rep.get("failed_checks") or []
    # Close the tracking task opened in align, linked to what the mission delivered.
    tasks = as_dict((yield Call("task_list"))).get("tasks") or []
    tracking = next((t for t in tasks if str(t.get("title", "")).startswith("Productionize:")), None)
    if tracking is not None:
        links = [p for p in (rep.get("path"), "docs/deployment-notes.md", "reports/evaluation.json")
                 if p and (view.workspace / p).is_file()]
        yield Call("task_update", {"task_id": tracking["id"], "status": "blocked" if failed_checks else "done",
                                   "notes": f"{len(failed_checks)} failed checks", "links": links})
    summary = (f"Mission report {rep.get('path')}: {rep.get('checks')} checks, {len(failed_checks)} failed; "
               f"{rep.get('deliverables')} deliverables linked; not produced: {', '.join(rep.get('not_produced') or []) or 'none'}.")
    problem = (rep.get("error") if failed(rep) else
               f"{len(failed_checks)} of {rep.get('checks')} checks failed: " + "; ".join(map(_check_text, failed_checks))
               if failed_checks else "")
    return Finish(summary=summary, artifacts=[p for p in (rep.get("path"), *extra) if p],
                  findings=[Finding(title="check failed", detail=str(row), severity="high") for row in failed_checks],
                  status="failed" if problem else "completed", reason=str(problem or "")[:2000])


def _check_text(row: Any) -> str:
    """A report table row (``| check | FAIL | detail |``) as a sentence: ``check: detail``."""
    cells = [c.strip() for c in str(row).strip().strip("|").split("|")]
    return f"{cells[0]}: {cells[-1][:200]}" if len(cells) >= 3 else str(row)


def _readme(view: View, found: dict[str, Any]) -> str:
    """The pipeline's README: what it scores, how to run and check it, what it follows (all from the workspace)."""
    lines = ["# Batch scoring pipeline", "", view.mission.objective, "",
             f"- Model: `{found.get('model_path')}`; configuration: `{found.get('config_path')}`.",
             "- Run: `python -m pipelines.batch_scoring`; check without writing: "
             "`python -m pipelines.batch_scoring --dry-run`.", "- Tests: `pytest tests/test_batch_scoring.py`.",
             "- Schedule and deadline: `deploy/cronjob.yaml`; rollout, rollback and monitoring: "
             "`docs/deployment-notes.md`.", "", "## Constraints it follows", ""]
    lines += [f"- {c}" for c in parse_constraints(clauses(view)).summary()] or ["- none stated"]
    return "\n".join(lines) + "\n"


def manual_plan(view: View) -> Playbook:
    """A tool the procedure needed was denied: write the plan a person follows to do it by hand."""
    found = as_dict((yield _located(view)))
    lines = ["# Manual deployment plan", "",
             "A tool call this mission needed was not allowed (see the audit trail's denied calls). "
             "Do these steps by hand, in order, and record each in the tracking task:", "",
             f"1. Review the inputs: model `{found.get('model_path')}`, config `{found.get('config_path')}`.",
             "2. Run the validation: " + ("; ".join(view.mission.validation) or "the generated tests") + ".",
             "3. Apply the deployment files under `deploy/` with the access the agent lacked.",
             "4. Watch the alerts in `docs/deployment-notes.md` through the first scheduled run.", ""]
    written = as_dict((yield Call("write_file", {"path": "docs/manual-plan.md", "content": "\n".join(lines)})))
    if failed(written):
        return Finish(summary=f"The manual plan could not be written: {written['error']}", status="failed",
                      reason=f"manual plan: {written['error']}")
    return Finish(summary="Manual plan written to docs/manual-plan.md.", artifacts=["docs/manual-plan.md"])


PLAYBOOKS["ml-engineer"] = {"align": align, "design": design, "implement": implement, "evaluate": evaluate,
                            "package": package, "release": release, "report": report, "manual_plan": manual_plan}
