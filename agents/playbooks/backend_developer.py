"""The Backend Developer as played by the built-in planner: the online inference app when the mission
serves online (its tests, then a load test on loopback judged against the mission's latency targets),
otherwise a review of the batch scoring interface."""

from __future__ import annotations

from agents.playbooks import PLAYBOOKS
from agents.playbooks.base import Call, Finding, Finish, Playbook, View
from agents.playbooks.ml_engineer import as_dict, clauses, failed, findings_of

__all__ = ["serve_or_review", "LOAD_TEST_REQUESTS"]

LOAD_TEST_REQUESTS = 200
"""Timed requests of the load test: a stable p95 (ten requests above it) in seconds on loopback."""


def serve_or_review(view: View) -> Playbook:
    found = as_dict((yield Call("locate_inputs", {"inputs": list(view.mission.inputs)})))
    if view.mission.serving_mode != "online":
        review = as_dict((yield Call("review_scoring_interface",
                                     {"config_path": found.get("config_path") or "pipelines/batch-scoring.yaml"})))
        problems = review.get("problems") or []
        summary = (f"Batch mission: no online endpoint built. Reviewed the scoring interface ({review.get('checks')} "
                   f"checks, {len(problems)} problems) in {review.get('path')}.")
        findings = [Finding(title=p["title"], detail=p["detail"], severity=p.get("severity", "medium")) for p in problems]
        return Finish(summary=summary, findings=findings + findings_of(review), artifacts=[review.get("path", "")],
                      status="blocked" if failed(review) else "completed")
    app = as_dict((yield Call("generate_inference_service", {"model_path": found.get("model_path") or "",
                                                             "sample_data_path": found.get("reference_path") or ""})))
    if failed(app):
        return Finish(summary=f"Inference app not generated: {app.get('error')}", findings=findings_of(app), status="failed")
    tests = as_dict((yield Call("run_tests", {"path": app["tests"]})))
    ok = tests.get("failed") == 0 and tests.get("errors") == 0 and (tests.get("passed") or 0) > 0
    summary = (f"FastAPI app {app.get('app')} for a {app.get('kind')} model with {', '.join(app.get('endpoints', []))} "
               f"for {app.get('features')} validated features; its tests: {tests.get('passed')} passed, "
               f"{tests.get('failed')} failed, {tests.get('errors')} errors.")
    findings = [] if ok else [Finding(title="service tests failing", severity="high",
                                      detail=str(tests.get("failures") or tests.get("error")))]
    if not ok:
        return Finish(summary=summary, findings=findings, artifacts=app.get("files", []), status="failed",
                      reason=f"the generated service's tests fail: {tests.get('failed')} failed, "
                             f"{tests.get('errors')} errors")
    load = as_dict((yield Call("load_test_service", {"requests": LOAD_TEST_REQUESTS, "constraints": clauses(view)})))
    if failed(load):
        return Finish(summary=f"{summary} Load test could not run: {load.get('error')}", findings=findings_of(load),
                      artifacts=app.get("files", []), status="failed", reason=f"load test: {load.get('error')}")
    latency = load.get("latency_ms") or {}
    missed = [t for t in load.get("targets") or [] if not t.get("passed")]
    summary += (f" Load test on loopback: {load.get('requests')} requests, {load.get('errors')} errors, p50 "
                f"{latency.get('p50')} ms, p95 {latency.get('p95')} ms, p99 {latency.get('p99')} ms; "
                + ("; ".join(f"{t['percentile']} target {t['max_ms']:g} ms {'met' if t['passed'] else 'MISSED'}"
                             for t in load.get("targets") or []) or "no latency target stated") + ".")
    findings += [Finding(title=f"{t['percentile']} latency over target", severity="high",
                         detail=f"{t['measured_ms']} ms measured vs {t['max_ms']:g} ms ({t['source_text']})")
                 for t in missed]
    if load.get("errors"):
        findings.append(Finding(title="load test errors", severity="high",
                                detail=f"{load.get('errors')} of {load.get('requests')} requests failed: "
                                       f"{load.get('statuses')}"))
    passes = bool(load.get("passes"))
    return Finish(summary=summary, findings=findings, artifacts=app.get("files", []) + [load.get("path", "")],
                  status="completed" if passes else "failed",
                  reason="" if passes else "the service misses the mission's latency targets or failed requests: "
                                           + "; ".join(f.detail for f in findings))


PLAYBOOKS["backend-developer"] = {"*": serve_or_review}
