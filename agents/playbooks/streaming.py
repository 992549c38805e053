"""The streaming branch of the built-in planner's playbooks: taken when the mission's serving mode is
``streaming`` (a stream, a topic, Kafka, a consumer...); batch and online missions never come here.

Design names the source, the micro-batch size and interval, the delivery semantics and the state; implement
generates the consumer beside the batch package and runs its dry run, its tests and the Redis kill/restart
test in the sandbox; release sizes the replicas and writes the Deployments and the rollout; the report lists
each check, running them again unless what they ran on is unchanged since implement (same fingerprint).
"""

from __future__ import annotations

import json
from typing import Any

from agents.playbooks.base import Brief, Call, Finding, Finish, Handoff, Playbook, View

__all__ = ["STREAMING", "design", "implement", "prepare_release", "release_brief", "report_checks"]

STREAMING = "streaming"
CONSUMER_TESTS = "tests/test_streaming_scoring.py"
REDIS_TEST = "tests/test_streaming_redis.py"
DRY_RUN = "python -m pipelines.streaming_scoring --dry-run"
VALIDATION_PATH = "reports/stream-validation.json"
"""Implement's passed consumer checks with the fingerprint of what they ran on; the report reuses them while the
fingerprint holds."""


def _fingerprint(view: View) -> str:
    from tools.ml.streaming import consumer_fingerprint  # the toolkit, imported when a streaming mission needs it

    return consumer_fingerprint(view.workspace)


def _ml() -> Any:
    from agents.playbooks import (
        ml_engineer,  # the lead's helpers; imported late: ml_engineer imports this module
    )

    return ml_engineer


def _counts(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result.get(k) for k in ("passed", "failed", "errors", "skipped")}


def _passed(result: dict[str, Any]) -> bool:
    return (result.get("failed") == 0 and result.get("errors") == 0 and not result.get("skipped")
            and (result.get("passed") or 0) > 0)


def _dry(result: dict[str, Any]) -> dict[str, Any]:
    """The dry run's figures, read from the JSON line the consumer prints."""
    out: dict[str, Any] = {"exit_code": result.get("exit_code")}
    for line in reversed(str(result.get("stdout_tail") or "").strip().splitlines()):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and parsed.get("dry_run"):
            out.update(messages=parsed.get("messages"), lost=parsed.get("lost"),
                       duplicates=parsed.get("duplicates_after_replay"), scored=parsed.get("scored"),
                       dead_letters=parsed.get("dead_letters"), problems=parsed.get("problems"))
            break
    return out


def _expected_alerts(view: View) -> list[str]:
    """The lag and latency alerts the mission's words ask for (names as the constraint parser gives them)."""
    from orchestrator.constraints import parse_constraints

    cs = parse_constraints(_ml().clauses(view))
    return [r.name for r in cs.alerts
            if r.metric.startswith("consumer_lag_") or (r.metric.startswith("latency_") and r.metric.endswith("_ms"))]


def design(view: View) -> Playbook:
    ml = _ml()
    found = ml.as_dict((yield ml._located(view)))
    doc, stream = yield [Call("write_design_doc", {"objective": view.mission.objective, "serving_mode": STREAMING,
                                                   "constraints": ml.clauses(view),
                                                   "inputs": list(view.mission.inputs)}),
                         Call("write_stream_design", {"objective": view.mission.objective,
                                                      "constraints": ml.clauses(view)})]
    doc, stream = ml.as_dict(doc), ml.as_dict(stream)
    brief = Brief(task="Review the scoring interface the streaming consumer shares with the batch package (inputs, "
                       "outputs, failure behaviour); no online endpoint is built for a streaming mission.",
                  context=f"Config: {found.get('config_path')}; model: {found.get('model_path')}; consumer design: "
                          f"{stream.get('path')}.",
                  expected_output="docs/scoring-interface-review.md and the problems found.")
    summary, findings, artifacts, status = ml._handoff_text((yield Handoff("backend-developer", brief)))
    problems = [f"{name}: {r['error']}" for name, r in (("design document", doc), ("stream design", stream))
                if ml.failed(r)]
    if status != "completed":
        problems.append(f"Backend Developer {status}: {summary}")
    micro = stream.get("micro_batch") or {}
    rules = ", ".join(f"{r['name']} {r['threshold']:g} ({r['source']})" for r in stream.get("alert_rules") or [])
    text = (f"Design (streaming) in {doc.get('path', 'docs/design.md')} and {stream.get('path')}: source "
            f"{stream.get('source')} `{stream.get('stream')}` (consumer group `{stream.get('group')}`); micro-batch "
            f"up to {micro.get('max_messages')} messages or {micro.get('max_wait_ms')} ms; delivery: "
            f"{stream.get('semantics')}; state: {stream.get('state')}; alert rules: {rules}. "
            f"Backend Developer: {summary}")
    return Finish(summary=text, findings=findings + ml.findings_of(doc) + ml.findings_of(stream),
                  artifacts=[p for p in (doc.get("path"), *(stream.get("files") or []), *artifacts) if p],
                  status="failed" if problems else "completed", reason="; ".join(problems))


def implement(view: View) -> Playbook:
    ml = _ml()
    found = ml.as_dict((yield ml._located(view)))
    config = found.get("config_path") or "pipelines/batch-scoring.yaml"
    gen = ml.as_dict((yield Call("generate_batch_pipeline", {"config_path": config})))
    if ml.failed(gen):
        why = gen.get("error") or "; ".join(f.detail for f in ml.findings_of(gen)) or "see findings"
        return Finish(summary=f"Pipeline generation blocked: {why}", findings=ml.findings_of(gen),
                      artifacts=gen.get("files", []), status="blocked", reason=f"pipeline generation: {why}")
    consumer = ml.as_dict((yield Call("generate_streaming_consumer", {"batch_config": config,
                                                                      "constraints": ml.clauses(view)})))
    if ml.failed(consumer):
        why = consumer.get("error") or "see findings"
        return Finish(summary=f"Consumer generation blocked: {why}", findings=ml.findings_of(consumer),
                      artifacts=gen.get("files", []), status="blocked", reason=f"consumer generation: {why}")
    batch_dry = ml.as_dict((yield Call("bash", {"command": "python -m pipelines.batch_scoring --dry-run"})))
    batch_tests = ml.as_dict((yield Call("run_tests", {"path": gen.get("tests", "tests/test_batch_scoring.py")})))
    dry = _dry(ml.as_dict((yield Call("bash", {"command": DRY_RUN}))))
    tests = ml.as_dict((yield Call("run_tests", {"path": CONSUMER_TESTS})))
    redis = ml.as_dict((yield Call("run_tests", {"path": REDIS_TEST})))
    checks = {"batch dry run": batch_dry.get("exit_code") == 0, "batch tests": _passed(batch_tests),
              "consumer dry run": dry.get("exit_code") == 0 and dry.get("lost") == 0 and dry.get("duplicates") == 0,
              "consumer tests": _passed(tests), "Redis kill/restart test": _passed(redis)}
    failing = [name for name, ok in checks.items() if not ok]
    recorded: list[str] = []
    if not failing:  # what passed here is not run again by the report while its inputs stay the same
        record = {"fingerprint": _fingerprint(view), **_figures(dry, tests, redis)}
        written = ml.as_dict((yield Call("write_file", {"path": VALIDATION_PATH,
                                                        "content": json.dumps(record, indent=2)})))
        recorded = [] if ml.failed(written) else [VALIDATION_PATH]
    rules = ", ".join(f"{r['name']} {r['threshold']:g} ({r['source']})" for r in consumer.get("alert_rules") or [])
    summary = (f"Generated {gen.get('package')} and, beside it sharing its code, {consumer.get('package')} "
               f"({len(consumer.get('files', []))} files; stream alert rules: {rules}). Batch dry run exit code "
               f"{batch_dry.get('exit_code')}, batch tests {batch_tests.get('passed')} passed. Consumer dry run exit "
               f"code {dry.get('exit_code')}: {dry.get('messages')} messages replayed twice, {dry.get('lost')} lost, "
               f"{dry.get('duplicates')} duplicated. Consumer tests: {tests.get('passed')} passed, "
               f"{tests.get('failed')} failed, {tests.get('errors')} errors. Redis kill/restart test: "
               f"{redis.get('passed')} passed, {redis.get('failed')} failed, {redis.get('skipped')} skipped.")
    findings = ml.findings_of(gen) + ml.findings_of(consumer)
    for name, result in (("consumer tests", tests), ("Redis kill/restart test", redis)):
        if not _passed(result):
            findings.append(Finding(title=f"{name} failed", severity="high",
                                    detail=str(result.get("failures") or result.get("error") or _counts(result))))
    if not checks["consumer dry run"]:
        findings.append(Finding(title="consumer dry run failed", severity="high", detail=str(dry)))
    return Finish(summary=summary, findings=findings,
                  artifacts=[*gen.get("files", []), *consumer.get("files", []), *recorded],
                  status="failed" if failing else "completed",
                  reason=f"the streaming deliverables do not pass their checks: {', '.join(failing)}" if failing else "")


def release_brief(view: View, found: dict[str, Any]) -> Brief:
    ml = _ml()
    return Brief(task="Prepare the streaming release: measured per-replica throughput against the sustained rate "
                      "(replicas, partitions), the Kubernetes Deployment with probes (not a CronJob), the shadow "
                      "consumer group and canary Deployments, the rollout/rollback plan with a lag-based autoscaling "
                      "note.",
                 context=f"Consumer config pipelines/streaming-scoring.yaml; batch config {found.get('config_path')}; "
                         "constraints: " + "; ".join(view.mission.constraint_set.summary()) + f".{ml._carried(view)}",
                 expected_output="reports/stream-capacity.json, deploy/stream-deployment.yaml, deploy/stream-shadow.yaml, "
                                 "deploy/stream-canary.yaml, docs/stream-rollout.md and the fit verdict.")


def prepare_release(view: View) -> Playbook:
    """The DevOps Engineer's part for a streaming mission."""
    ml = _ml()
    asked = ml.clauses(view)
    capacity = ml.as_dict((yield Call("estimate_stream_capacity", {"constraints": asked})))
    deployment = ml.as_dict((yield Call("write_stream_deployment", {"constraints": asked})))
    checks = deployment.get("checks") or {}
    summary = (f"Stream capacity: {capacity.get('verdict', capacity.get('error'))}. Deployments "
               + ", ".join(f"{path} ({'ok' if state == 'ok' else 'problems: ' + '; '.join(state)})"
                           for path, state in checks.items())
               + f" with probes {', '.join(deployment.get('probes') or [])}; rollout and rollback in "
                 f"{deployment.get('rollout')}.")
    ok = capacity.get("fits") is True and deployment.get("status") == "ok"
    findings = ml.findings_of(capacity) + ml.findings_of(deployment)
    findings += [Finding(title="deployment check", detail=str(p), severity="high") for p in deployment.get("problems") or []]
    return Finish(summary=summary, findings=findings,
                  artifacts=[p for p in (capacity.get("path"), *(deployment.get("files") or [])) if p],
                  status="completed" if ok else "failed",
                  reason="" if ok else f"stream release not ready: capacity fits {capacity.get('fits')}, deployment "
                                       f"{deployment.get('status') or deployment.get('error')}")


def _figures(dry: dict[str, Any], tests: dict[str, Any], redis: dict[str, Any]) -> dict[str, Any]:
    return {"consumer_dry_run": {k: dry.get(k) for k in ("exit_code", "messages", "lost", "duplicates")},
            "consumer_tests": _counts(tests), "consumer_redis_test": _counts(redis)}


def _recorded(view: View) -> dict[str, Any] | None:
    """Implement's passed checks, when everything they ran on is unchanged (the same fingerprint)."""
    try:
        record = json.loads((view.workspace / VALIDATION_PATH).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != _fingerprint(view):
        return None
    return record


def report_checks(view: View) -> Playbook:
    """The consumer's checks for the report: implement's figures when nothing they ran on changed since, else run
    again; returns the ``checks`` entries they fill."""
    ml = _ml()
    record = _recorded(view)
    if record is not None:
        figures = {**_figures(record.get("consumer_dry_run") or {}, record.get("consumer_tests") or {},
                              record.get("consumer_redis_test") or {}),
                   "consumer_checks_ran": {"step": "implement", "fingerprint": record["fingerprint"]}}
    else:
        dry = _dry(ml.as_dict((yield Call("bash", {"command": DRY_RUN}))))
        tests = ml.as_dict((yield Call("run_tests", {"path": CONSUMER_TESTS})))
        redis = ml.as_dict((yield Call("run_tests", {"path": REDIS_TEST})))
        figures = _figures(dry, tests, redis)
    return {**figures, "stream_alerts_expected": _expected_alerts(view)}
