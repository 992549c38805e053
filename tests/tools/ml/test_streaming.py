"""Streaming missions: the generated consumer's tests and dry run in the sandbox, the consumer against the local
Redis (killed mid-stream with SIGKILL, restarted: zero lost, zero duplicated), alert rules from the mission's
words, the Deployment manifest, and a streaming mission run to the end by the built-in planner."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.config import Settings
from orchestrator.mission import parse_mission
from orchestrator.runner import Runner
from tests.tools.ml.support import call, new_run
from tools.context import ToolContext
from tools.ml.demo import build_demo_workspace
from tools.ml.stream_release import check_deployment, stream_check_rows
from tools.ml.streaming import consumer_fingerprint
from tools.registry import tool_by_name

FREE_TEXT = ("score the transactions stream from Redis in near real time with the anomaly detector, alert when "
             "consumer lag exceeds 30 s")
SEED_FORM = """/agent ml-engineer
Mission: Score the transactions stream with the anomaly detection model as events arrive, with drift monitoring.
Inputs: models/anomaly-detector/, pipelines/batch-scoring.yaml.
Constraints: alert when consumer lag exceeds 30 s; p95 latency under 2 s; alert on precision drop >5%.
Expected Deliverables: Streaming consumer, monitoring hooks, Kubernetes Deployment, rollout plan.
Validation: python -m pipelines.streaming_scoring --dry-run, consumer tests, Redis restart test.
"""
REDIS = ("127.0.0.1", 6379)


def _clauses(text: str) -> list[str]:
    return list(parse_mission(text).constraint_set.clauses)


@pytest.fixture
def consumer_ws(tool_ctx: ToolContext) -> ToolContext:
    """A small demo workspace with the consumer designed and generated for the seed-form mission."""
    build_demo_workspace(tool_ctx.workspace, reference_rows=1500, current_rows=1200, expected_rows_per_night=100_000)
    clauses = _clauses(SEED_FORM)
    call(tool_by_name("write_stream_design"), tool_ctx, objective=parse_mission(SEED_FORM).objective,
         constraints=clauses)
    call(tool_by_name("generate_streaming_consumer"), tool_ctx, constraints=clauses)
    return tool_ctx


def test_both_mission_forms_are_streaming_and_their_alert_rules_come_from_their_words(tool_ctx: ToolContext) -> None:
    build_demo_workspace(tool_ctx.workspace, reference_rows=600, current_rows=400)
    for text, latency in ((FREE_TEXT, None), (SEED_FORM, 2000.0)):
        mission = parse_mission(text)
        assert mission.serving_mode == "streaming"
        design = call(tool_by_name("write_stream_design"), tool_ctx, objective=mission.objective,
                      constraints=_clauses(text))
        rules = {r["metric"]: r for r in design["alert_rules"]}
        assert (rules["consumer_lag_seconds"]["threshold"], rules["consumer_lag_seconds"]["source"]) == (30.0, "mission")
        assert rules["latency_p95_ms"]["source"] == ("mission" if latency else "default")
        if latency:
            assert rules["latency_p95_ms"]["threshold"] == latency
        assert (design["source"], design["stream"]) == ("redis", "transactions")
        written = yaml.safe_load((tool_ctx.workspace / "monitoring/stream-alerts.yaml").read_text())["rules"]
        assert [r["name"] for r in written] == [r["name"] for r in design["alert_rules"]]
        config = yaml.safe_load((tool_ctx.workspace / "pipelines/streaming-scoring.yaml").read_text())
        assert config["micro_batch"]["max_wait_ms"] <= (latency or 30_000) / 4
    kafka = call(tool_by_name("write_stream_design"), tool_ctx, objective="consume the payments topic from Kafka",
                 constraints=[])
    assert (kafka["source"], kafka["stream"]) == ("kafka", "payments")
    source = yaml.safe_load((tool_ctx.workspace / "pipelines/streaming-scoring.yaml").read_text())["source"]
    assert (source["kind"], source["kafka"]["topic"], source["kafka"]["client"]) == ("kafka", "payments", "auto")
    assert {r["source"] for r in kafka["alert_rules"]} == {"default"}  # no words: defaults, said as such


@pytest.mark.timeout(900)  # three sandboxed runs, each starting Python processes that load scikit-learn
def test_generated_tests_and_dry_run_pass_in_the_sandbox(consumer_ws: ToolContext) -> None:
    ws = consumer_ws.workspace
    source = (ws / "pipelines/streaming_scoring/consumer.py").read_text()
    assert "from pipelines.batch_scoring.scoring import" in source and "def score_chunk" not in source  # shared
    dry = call(tool_by_name("bash"), consumer_ws, command="python -m pipelines.streaming_scoring --dry-run")
    assert dry["exit_code"] == 0 and dry["sandboxed"], dry["stderr_tail"][-2000:]
    result = json.loads(dry["stdout_tail"].strip().splitlines()[-1])
    assert result["ok"] and result["lost"] == 0 and result["duplicates_after_replay"] == 0 and result["messages"] > 0
    # 13 on the replay source, 3 of them the Kafka adapter against an in-memory broker (no broker runs here).
    for path, least in (("tests/test_streaming_scoring.py", 13), ("tests/test_streaming_redis.py", 1)):
        tests = call(tool_by_name("run_tests"), consumer_ws, path=path)
        assert tests["sandboxed"] and tests["failed"] == 0 and tests["errors"] == 0, tests["failures"]
        assert tests["skipped"] == 0 and tests["passed"] >= least, tests


def _redis() -> Iterator[object]:
    redis = pytest.importorskip("redis", reason="the redis client package is not installed (pip install -e .[dev])")
    client = redis.Redis(host=REDIS[0], port=REDIS[1], socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        server = shutil.which("redis-server")
        if server is None:
            pytest.skip("no redis-server binary on this machine (apt-get install redis-server; scripts/test does)")
        for folder in ("/var/lib/redis", "/var/log/redis"):
            Path(folder).mkdir(parents=True, exist_ok=True)
        subprocess.run([server, "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(REDIS[1]),
                        "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile",
                        "/var/log/redis/ci.log"], check=True, timeout=30)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not come up on 127.0.0.1:6379"
                time.sleep(0.1)
    return client


def _consumer(ws: Path, config: Path, *args: str) -> subprocess.Popen[str]:
    # The workspace here is the demo's, generated by our own tools: run outside the sandbox to reach Redis.
    return subprocess.Popen([sys.executable, "-m", "pipelines.streaming_scoring", "--config", str(config),
                             "--log-level", "WARNING", *args], cwd=ws, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_consumer_on_the_local_redis_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
        consumer_ws: ToolContext) -> None:
    client = _redis()
    ws = consumer_ws.workspace
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    stream, group, scores, dead_letter = f"{prefix}:events", f"{prefix}:scoring", f"{prefix}:scores", f"{prefix}:dead"
    data = yaml.safe_load((ws / "pipelines/streaming-scoring.yaml").read_text())
    data["source"]["redis"].update({"url": f"redis://{REDIS[0]}:{REDIS[1]}/0", "stream": stream, "group": group,
                                    "consumer": "replica-1", "block_ms": 50, "dead_letter": dead_letter})
    data["sink"] = {"kind": "redis", "redis_key": scores}
    data["micro_batch"] = {"max_messages": 20, "max_wait_ms": 50}
    data["monitoring"].update(metrics_path=f"outputs/{prefix}/metrics.json", alerts_path=f"outputs/{prefix}/alerts.json")
    config = ws / f"pipelines/{prefix}.yaml"
    config.write_text(yaml.safe_dump(data))
    sample = [json.loads(line) for line in (ws / "data/stream-sample.jsonl").read_text().splitlines()]
    records: list[object] = [sample[i % len(sample)] for i in range(598)]
    records.insert(50, {k: v for k, v in sample[0].items() if k != "mean_radius"})  # poison: a feature missing
    records.insert(400, ["not", "a", "record"])                                      # poison: not a record
    produced: list[str] = []

    def produce() -> None:
        for i, record in enumerate(records):
            produced.append(client.xadd(stream, {"data": json.dumps(record)}).decode())
            if i % 25 == 24:
                time.sleep(0.02)

    try:
        first = _consumer(ws, config)
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        deadline = time.monotonic() + 120
        try:
            while client.hlen(scores) < 60:
                assert first.poll() is None, first.stderr.read()[-2000:] if first.stderr else ""
                assert time.monotonic() < deadline, "no results from the consumer"
                time.sleep(0.01)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        at_kill = client.hlen(scores)
        producer.join(timeout=120)
        assert len(produced) == 600 and at_kill < 598, f"{at_kill} results at the kill: not mid-stream"
        pending = client.xpending(stream, group)["pending"]

        # The same replica restarts (the container restarted in its pod): it reads its own pending entries first.
        second = _consumer(ws, config, "--idle-exit", "2")
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err[-2000:]
        summary = json.loads(out.strip().splitlines()[-1])
        results = {k.decode(): json.loads(v) for k, v in client.hgetall(scores).items()}
        dead = {k.decode(): v.decode() for k, v in client.hgetall(f"{dead_letter}:index").items()}
        assert len(results) + len(dead) == 600 and set(results) | set(dead) == set(produced)  # zero lost
        assert not set(results) & set(dead) and all(r["message_id"] == k for k, r in results.items())
        assert client.xlen(dead_letter) == 2 and sorted(dead.values())[0].startswith("missing features: mean_radius")
        assert client.xpending(stream, group)["pending"] == 0
        assert summary["redelivered"] == pending  # what the killed process held came back, once
    finally:
        client.delete(stream, scores, dead_letter, f"{dead_letter}:index")
        client.close()


def test_stream_release_writes_a_valid_deployment_with_probes_and_the_rollout(consumer_ws: ToolContext) -> None:
    clauses = _clauses(SEED_FORM)
    capacity = call(tool_by_name("estimate_stream_capacity"), consumer_ws, benchmark_messages=2000,
                    constraints=clauses)
    assert capacity["fits"] and capacity["messages_per_second_per_replica"] > 0 and capacity["replicas"] >= 2
    assert capacity["rate_source"].startswith("assumed") and capacity["sustained_rate"] == round(100_000 / 86400, 3)
    written = call(tool_by_name("write_stream_deployment"), consumer_ws, constraints=clauses)
    assert written["status"] == "ok", written["problems"]
    ws = consumer_ws.workspace
    for path in ("deploy/stream-deployment.yaml", "deploy/stream-shadow.yaml", "deploy/stream-canary.yaml"):
        text = (ws / path).read_text()
        doc = yaml.safe_load(text)
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert doc["kind"] == "Deployment" and container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" and check_deployment(text) == []
    production = yaml.safe_load((ws / "deploy/stream-deployment.yaml").read_text())
    assert production["spec"]["replicas"] == capacity["replicas"]
    shadow = yaml.safe_load((ws / "deploy/stream-shadow.yaml").read_text())
    env = {e["name"]: e.get("value") for e in shadow["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STREAM_GROUP"].endswith("-shadow")
    rollout = (ws / "docs/stream-rollout.md").read_text()
    for heading in ("## Rollout: shadow consumer group -> canary -> promote", "## Rollback", "## Autoscaling on lag"):
        assert heading in rollout
    assert check_deployment(yaml.safe_dump({**production, "kind": "CronJob"}))[0].startswith("kind is 'CronJob'")

    # The report takes figures from an earlier step only while their fingerprint holds: a changed consumer is stale.
    passed = {"passed": 13, "failed": 0, "errors": 0, "skipped": 0}
    earlier = {"consumer_tests": passed, "consumer_checks_ran": {"step": "implement",
                                                                 "fingerprint": consumer_fingerprint(ws)}}
    [(_, detail, ok)] = [r for r in stream_check_rows(ws, earlier) if r[0].startswith("Generated consumer tests")]
    assert ok and "unchanged since" in detail
    consumer = ws / "pipelines/streaming_scoring/consumer.py"
    consumer.write_text(consumer.read_text() + "\n# edited after the checks\n")
    [(_, detail, ok)] = [r for r in stream_check_rows(ws, earlier) if r[0].startswith("Generated consumer tests")]
    assert not ok and detail.endswith("changed since: stale)")


def test_streaming_playbooks_design_implement_and_release(consumer_ws: ToolContext) -> None:
    run = new_run(consumer_ws, FREE_TEXT)
    design = run.step("design")
    assert design.status == "completed", design.summary
    assert "source redis `transactions`" in design.summary and "at-least-once" in design.summary
    released = run.step("release")
    assert released.status == "completed", released.summary
    assert ("devops-engineer", "release", "write_stream_deployment") in run.calls
    assert not any(name == "write_schedule" for _, _, name in run.calls)  # a Deployment, not a CronJob


@pytest.mark.slow
@pytest.mark.mission
@pytest.mark.timeout(1200)  # the six steps, the report running the consumer's checks again: ~5 min on 2 busy cores
@pytest.mark.parametrize("text", [SEED_FORM, FREE_TEXT], ids=["seed-form", "free-text"])
def test_a_streaming_mission_completes_with_the_builtin_planner(tmp_path: Path, text: str) -> None:
    if shutil.which("redis-server") is None:  # the generated Redis test starts its own, inside the sandbox
        pytest.skip("no redis-server binary on this machine (apt-get install redis-server; scripts/test does)")
    ws = tmp_path / "ws"
    build_demo_workspace(ws, reference_rows=1500, current_rows=1200, expected_rows_per_night=100_000)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'o.db'}", _env_file=None)
    with Runner(settings) as runner:
        mission_id = runner.submit(text, workspace=ws, auto_approve_by="tester")
        assert runner.run(mission_id) == "completed"
    report = (ws / "reports/mission-report.md").read_text()
    for check in ("Consumer dry run", "Generated consumer tests (replay source, sandbox)", "Redis kill/restart test",
                  "Stream alert rules from the mission's words", "Stream Deployment manifest", "Stream capacity",
                  "Stream rollout and rollback plan"):
        row = next((line for line in report.splitlines() if line.startswith(f"| {check}")), None)
        assert row is not None and "| pass |" in row, (check, report)
    assert "consumer_lag_seconds_above 30 (mission)" in report
    # Implement's passed consumer checks stand in the report while what they ran on is unchanged (not run twice).
    tests_row = next(line for line in report.splitlines() if line.startswith("| Generated consumer tests"))
    assert "(run at implement; code, tests, configs and model unchanged since" in tests_row, tests_row
    assert (ws / "deploy/stream-deployment.yaml").is_file() and not (ws / "deploy/cronjob.yaml").exists()
