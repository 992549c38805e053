"""Releasing a streaming consumer: capacity from a MEASURED per-replica throughput against the sustained rate,
the Kubernetes Deployments (production, shadow consumer group, canary) with probes, the rollout and rollback
plan with a lag-based autoscaling note, and the checks the mission report lists."""

from __future__ import annotations

import json
import math
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet, format_duration
from tools.context import Ctx, ToolContext
from tools.ml.data import DataError, load_config, read_json
from tools.ml.monitoring import ALERTS_PATH
from tools.ml.schedule import get_path, release_constraints
from tools.ml.streaming import CONFIG_PATH, PACKAGE_DIR, RULES_PATH, _rate, consumer_fingerprint, stream_rules
from tools.sandbox import run_sandboxed

__all__ = [
    "CANARY_PATH",
    "DEPLOYMENT_PATH",
    "ROLLOUT_PATH",
    "SHADOW_PATH",
    "STREAM_CAPACITY_PATH",
    "STREAM_DELIVERABLES",
    "check_deployment",
    "estimate_stream",
    "estimate_stream_capacity",
    "stream_check_rows",
    "write_stream_deployment",
]

STREAM_CAPACITY_PATH = "reports/stream-capacity.json"
DEPLOYMENT_PATH = "deploy/stream-deployment.yaml"
SHADOW_PATH = "deploy/stream-shadow.yaml"
CANARY_PATH = "deploy/stream-canary.yaml"
ROLLOUT_PATH = "docs/stream-rollout.md"
HEALTH_PORT = 8080
_HEADROOM = 0.5
"""Plan each replica at half its measured rate: after an outage it drains the backlog as fast as it fills."""
_MIN_REPLICAS = 2
"""A node lost or a rolling update never stops the scoring."""
_MAX_REPLICAS = 50
STREAM_DELIVERABLES = [("Streaming consumer package", f"{PACKAGE_DIR}/__init__.py"),
                       ("Streaming config", CONFIG_PATH), ("Streaming design", "docs/streaming-design.md"),
                       ("Stream alert rules", RULES_PATH), ("Stream capacity", STREAM_CAPACITY_PATH),
                       ("Stream Deployment", DEPLOYMENT_PATH), ("Shadow Deployment", SHADOW_PATH),
                       ("Canary Deployment", CANARY_PATH), ("Stream rollout plan", ROLLOUT_PATH)]
"""What a streaming mission delivers besides the batch package (listed in the report when present)."""


def _stream_config(ctx: ToolContext, config_path: str) -> dict[str, Any]:
    config = load_config(ctx.workspace, config_path)
    if not config or not (ctx.workspace / PACKAGE_DIR / "__main__.py").is_file():
        raise DataError(f"no streaming consumer: {config_path!r} or {PACKAGE_DIR} is missing", path=config_path,
                        fix="generate it first with generate_streaming_consumer")
    return config


def _measure(ctx: ToolContext, config_path: str, messages: int) -> dict[str, Any]:
    # Workspace code runs in the sandbox only: the replay source, the real scoring and a SQLite sink.
    proc = run_sandboxed(["python", "-m", "pipelines.streaming_scoring", "--config", config_path,
                          "--benchmark-messages", str(messages), "--log-level", "WARNING"], ctx.workspace,
                         ctx.settings)
    if proc.exit_code != 0 or not proc.stdout.strip():
        raise DataError(f"the consumer's benchmark exited {proc.exit_code}: {proc.stderr[-500:]}", path=config_path,
                        fix="run `python -m pipelines.streaming_scoring --dry-run` and fix what it reports")
    try:
        measured = json.loads(proc.stdout.strip().splitlines()[-1])
    except json.JSONDecodeError:
        raise DataError(f"the consumer's benchmark printed no JSON: {proc.stdout[-300:]}", path=config_path,
                        fix="run the benchmark by hand and read its output") from None
    return {**measured, "method": "python -m pipelines.streaming_scoring --benchmark-messages (one replica, end to "
                                  "end: decode, check, score, write, acknowledge, monitor), in the sandbox"}


def _sustained(cs: ConstraintSet, config: dict[str, Any], batch: dict[str, Any],
               events_per_second: float) -> tuple[float | None, str]:
    if events_per_second:
        return events_per_second, "argument"
    if stated := _rate(cs):
        return stated[0], f"the mission: {stated[1]!r}"
    if config.get("expected_events_per_second"):
        return float(config["expected_events_per_second"]), "expected_events_per_second in the streaming config"
    nightly = batch.get("expected_rows_per_night")
    if nightly:
        return round(float(nightly) / 86400, 3), (f"assumed: the batch volume ({int(nightly):,} rows per night) "
                                                  "spread evenly over 24 h")
    return None, "unknown"


def estimate_stream(ctx: ToolContext, *, config_path: str, benchmark_messages: int = 5000,
                    events_per_second: float = 0.0, vcpu_hour_usd: float = 0.048,
                    constraints: ConstraintSet | None = None) -> dict[str, Any]:
    """Measure one replica and size the Deployment for the sustained rate, the lag limit and the latency target."""
    config = _stream_config(ctx, config_path)
    batch = load_config(ctx.workspace, str(config.get("batch_config") or "pipelines/batch-scoring.yaml"))
    cs = constraints if constraints is not None else ConstraintSet()
    measured = _measure(ctx, config_path, benchmark_messages)
    mps = float(measured["messages_per_second"] or 0)
    if mps <= 0:
        raise DataError("the consumer's benchmark measured no throughput", path=config_path,
                        fix="check the replay sample (data/stream-sample.jsonl) holds scorable records")
    findings: list[dict[str, str]] = []
    rate, rate_source = _sustained(cs, config, batch, events_per_second)
    if rate is None:
        findings.append({"severity": "medium", "title": "sustained rate unknown",
                         "detail": "state the events per second in the mission or expected_events_per_second in "
                                   f"{config_path}; sized for the minimum replicas"})
    elif rate_source.startswith("assumed"):
        findings.append({"severity": "medium", "title": "sustained rate assumed", "detail": rate_source})
    planned = mps * _HEADROOM
    needed = max(1, math.ceil((rate or 0) / planned))
    replicas = max(_MIN_REPLICAS, needed)
    max_replicas = min(_MAX_REPLICAS, max(replicas * 2, 4))
    rules = stream_rules(cs)
    lag_rule = next((r for r in rules if r["metric"] == "consumer_lag_seconds"), None)
    latency_rule = next((r for r in rules if r["metric"].startswith("latency_")), None)
    micro = config.get("micro_batch") or {}
    batch_ms = float(micro.get("max_messages", 500)) / mps * 1000
    expected_latency_ms = round(float(micro.get("max_wait_ms", 500)) + batch_ms, 1)
    spare = replicas * mps - (rate or 0)
    drain = None
    if lag_rule and rate:
        drain = round(rate * float(lag_rule["threshold"]) / spare, 1) if spare > 0 else None
    kind = (config.get("source") or {}).get("kind", "redis")
    partitions = ({"kafka": max_replicas,
                   "note": f"at least {max_replicas} partitions: a consumer group uses at most one replica per "
                           "partition, so the autoscaling ceiling needs as many"} if kind == "kafka" else
                  {"redis": 1, "note": "one stream: the consumer group spreads entries over any number of replicas; "
                                       "shard into several streams only past one Redis shard's write rate"})
    fits = needed <= _MAX_REPLICAS and (latency_rule is None or expected_latency_ms <= float(latency_rule["threshold"]))
    if latency_rule and expected_latency_ms > float(latency_rule["threshold"]):
        findings.append({"severity": "high", "title": "latency target not met", "detail":
                         f"a micro-batch waits up to {micro.get('max_wait_ms')} ms and takes {batch_ms:.0f} ms to "
                         f"score: {expected_latency_ms} ms > {latency_rule['threshold']:g} ms; lower "
                         "micro_batch.max_messages or max_wait_ms"})
    peak = measured.get("peak_rss_mb")
    out = {"measured": measured, "messages_per_second_per_replica": mps, "planned_per_replica": round(planned, 1),
           "sustained_rate": rate, "rate_source": rate_source, "replicas_needed": needed, "replicas": replicas,
           "max_replicas": max_replicas, "partitions": partitions, "source": kind,
           "expected_latency_ms": expected_latency_ms, "latency_limit_ms": latency_rule["threshold"] if latency_rule
           else None, "lag_limit_seconds": lag_rule["threshold"] if lag_rule else None,
           "backlog_drain_seconds": drain, "fits": fits,
           "memory_request_mb": math.ceil(float(peak) * 1.5) if peak else 512,
           "cost": {"vcpu_hour_usd": vcpu_hour_usd, "per_month_usd": round(replicas * vcpu_hour_usd * 720, 2),
                    "assumption": "one vCPU per replica, on demand, 720 h per month"},
           "findings": findings}
    load = f"{rate:g} events/s ({rate_source})" if rate else "an unknown rate"
    out["verdict"] = (f"one replica sustains {mps:,.0f} messages/s (planned at {planned:,.0f}); {load} needs "
                      f"{needed} replica(s), deploy {replicas} (autoscale to {max_replicas}); expected end-to-end "
                      f"latency {expected_latency_ms:g} ms"
                      + (f" vs {latency_rule['threshold']:g} ms" if latency_rule else "")
                      + (f"; a {format_duration(lag_rule['threshold'])} backlog drains in {drain:g} s" if drain else "")
                      + ("" if fits else ": does NOT fit"))
    return out


def _deployment(name: str, *, image: str, config_path: str, replicas: int, memory_mb: int,
                env: dict[str, str], component: str, secret: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas, "revisionHistoryLimit": 5, "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true",
                                                               "prometheus.io/port": str(HEALTH_PORT),
                                                               "prometheus.io/path": "/metrics"}},
                "spec": {
                    # SIGTERM finishes the micro-batch in hand: leave it time to write and acknowledge.
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "consumer", "image": image,
                        "command": ["python", "-m", "pipelines.streaming_scoring"],
                        "args": ["--config", config_path],
                        "env": [{"name": "STREAM_HEALTH_PORT", "value": str(HEALTH_PORT)},
                                {"name": "STREAM_REDIS_URL", "valueFrom": {"secretKeyRef": {
                                    "name": secret, "key": "redis-url", "optional": True}}},
                                {"name": "STREAM_KAFKA_BOOTSTRAP_SERVERS", "valueFrom": {"secretKeyRef": {
                                    "name": secret, "key": "kafka-bootstrap-servers", "optional": True}}},
                                *({"name": k, "value": v} for k, v in env.items())],
                        "ports": [{"name": "metrics", "containerPort": HEALTH_PORT}],
                        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 24},
                        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5},
                        "resources": {"requests": {"cpu": "1", "memory": f"{memory_mb}Mi"},
                                      "limits": {"memory": f"{memory_mb}Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "outputs", "mountPath": "/app/outputs"},
                                         {"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "outputs", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def check_deployment(text: str, *, replicas: int | None = None) -> list[str]:
    """Problems of a consumer Deployment: valid YAML, a Deployment (not a CronJob) running the consumer, with
    liveness and readiness probes on its health port, a non-root pod, memory requests and the planned replicas."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    if not isinstance(doc, dict):
        return ["not a Kubernetes object"]
    problems = []
    if doc.get("kind") != "Deployment":
        problems.append(f"kind is {doc.get('kind')!r}, not Deployment (a consumer runs continuously, not as a CronJob)")
    container = get_path(doc, "spec.template.spec.containers.0") or {}
    required = ["apiVersion", "metadata.name", "spec.replicas", "spec.selector.matchLabels",
                "spec.template.spec.containers.0.image", "spec.template.spec.containers.0.resources.requests.memory",
                "spec.template.spec.securityContext.runAsNonRoot", "spec.template.spec.terminationGracePeriodSeconds"]
    problems += [f"missing {key}" for key in required if get_path(doc, key) in (None, "")]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        if get_path(container, f"{probe}.httpGet.path") != path:
            problems.append(f"{probe} does not GET {path}")
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    if ports.get("metrics") != HEALTH_PORT:
        problems.append(f"no metrics port {HEALTH_PORT} for the probes")
    if "pipelines.streaming_scoring" not in " ".join(map(str, container.get("command") or [])):
        problems.append("the container does not run pipelines.streaming_scoring")
    if get_path(doc, "spec.template.spec.securityContext.runAsNonRoot") is not True:
        problems.append("pod does not require a non-root user")
    if replicas is not None and get_path(doc, "spec.replicas") != replicas:
        problems.append(f"spec.replicas {get_path(doc, 'spec.replicas')!r} is not the planned {replicas}")
    problems += _schema_problems(doc)
    return problems


def _schema_problems(doc: dict[str, Any]) -> list[str]:
    """The Kubernetes API schema check, when kubernetes-validate is installed (dev extra)."""
    try:
        import kubernetes_validate
    except ImportError:
        return []
    try:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"Kubernetes schema: {exc.message}"]
    except Exception:  # a schema version not bundled: the static checks above still hold
        return []
    return []


def _client_pin(kind: str) -> str | None:
    package = {"redis": "redis", "kafka": "confluent-kafka"}.get(kind)
    if package is None:
        return None
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package


def _rollout(name: str, config: dict[str, Any], capacity: dict[str, Any], rules: list[dict[str, Any]]) -> str:
    source = config.get("source") or {}
    kind = source.get("kind", "redis")
    redis, kafka = source.get("redis") or {}, source.get("kafka") or {}
    group = redis.get("group") if kind == "redis" else kafka.get("group_id")
    stream = redis.get("stream") if kind == "redis" else kafka.get("topic")
    key = (config.get("sink") or {}).get("redis_key", "scores")
    lag = next((r for r in rules if r["metric"] == "consumer_lag_seconds"), None)
    latency = next((r for r in rules if r["metric"].startswith("latency_")), None)
    gates = ", ".join(f"`{r['name']}` ({r['metric']} {'>' if r['direction'] == 'above' else '<'} {r['threshold']:g})"
                      for r in rules)
    lines = [f"# Streaming rollout: {name}", "",
             (f"A Kubernetes Deployment (`{DEPLOYMENT_PATH}`) runs `python -m pipelines.streaming_scoring` continuously "
             f"on {'Redis Streams' if kind == 'redis' else 'Kafka'} `{stream}` in consumer group `{group}`: "
             f"{capacity.get('replicas')} replicas, probes `/healthz` (liveness, startup) and `/readyz` (readiness) "
             f"on port {HEALTH_PORT}, Prometheus gauges on `/metrics`, SIGTERM honoured within "
             "`terminationGracePeriodSeconds`."), "",
             "## Capacity", "", f"- {capacity.get('verdict')}.",
             (f"- Measured: {capacity.get('messages_per_second_per_replica')} messages/s per replica "
             f"({(capacity.get('measured') or {}).get('method')})."),
             f"- Partitions: {capacity.get('partitions', {}).get('note')}.",
             (f"- Memory request {capacity.get('memory_request_mb')} MiB (1.5x the measured peak); cost about "
             f"{(capacity.get('cost') or {}).get('per_month_usd')} USD per month."), "",
             "## Autoscaling on lag (note)", "",
             f"Scale on consumer lag, not CPU: a consumer waiting on the broker uses little CPU while the backlog "
             f"grows. With KEDA, a `ScaledObject` on `{name}` (minReplicaCount {capacity.get('replicas')}, "
             f"maxReplicaCount {capacity.get('max_replicas')}) and the "
             + (f"`redis-streams` trigger (`stream: {stream}`, `consumerGroup: {group}`, `lagCount`: the backlog one "
                "replica clears within the lag limit)" if kind == "redis" else
                f"`kafka` trigger (`topic: {stream}`, `consumerGroup: {group}`, `lagThreshold`: the backlog one "
                "replica clears within the lag limit)")
             + (f"; the lag limit is {format_duration(lag['threshold'])} ({lag['source']})" if lag else "")
             + ". Without KEDA, export `stream_scoring_consumer_lag_messages` to the HPA through a Prometheus "
               "adapter. Kafka replicas above the partition count sit idle.", "",
             "## Rollout: shadow consumer group -> canary -> promote", "",
             "| Stage | What runs | Gate to go on |", "|---|---|---|",
             (f"| 1. Shadow | `{SHADOW_PATH}`: the new image in its own consumer group `{group}-shadow`, results to "
             f"`{key}:shadow`; production untouched | 1 h (four lag windows) with no alert fired: {gates}; scores "
             f"and flag rate within the batch rules of `{ALERTS_PATH}` |"),
             f"| 2. Canary | `{CANARY_PATH}`: one replica of the new image in the production group `{group}`: it takes "
             + ("about 1/(replicas+1) of the entries" if kind == "redis" else
                "the partitions the group assigns it (its canary partitions)")
             + " | 1 h: the same gates on the canary's `/metrics`; dead-letter rate unchanged |",
             (f"| 3. Promote | `kubectl set image deploy/{name} consumer=<new image>` (rolling, maxUnavailable 0); "
             f"delete the canary and shadow Deployments | lag back under the limit within "
             f"{capacity.get('backlog_drain_seconds') or 'minutes'} s |"), "",
             "## Rollback", "",
             (f"1. `kubectl rollout undo deploy/{name}` (and `kubectl delete -f {CANARY_PATH}`): the previous image "
             "takes over; positions live in the broker, so nothing is skipped or lost."),
             "2. Results are keyed by message id: to re-score what the faulty version wrote, "
             + (f"`XGROUP SETID {stream} {group} <first bad id>` replays from there" if kind == "redis" else
                f"`kafka-consumer-groups --reset-offsets --to-datetime <first bad time> --group {group} --topic "
                f"{stream} --execute` (with the Deployment scaled to 0) replays from there")
             + " and overwrites them; nothing is counted twice.",
             "3. In `registry/index.json`, mark the version `rolled_back` and the previous one `production`.",
             "4. Check `/metrics`: `stream_scoring_consumer_lag_seconds` falling, no `stream_scoring_alert_fired`.", "",
             "## Alerts", "", "| Alert | Threshold | From |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['threshold']:g} | {r['source']}: {r['source_text']} |" for r in rules]
    lines += ["", f"Drift and performance over the sliding window: the batch rules of `{ALERTS_PATH}`."]
    if latency:
        lines.append(f"Latency target: {latency['metric']} under {latency['threshold']:g} ms; expected "
                     f"{capacity.get('expected_latency_ms')} ms at the configured micro-batch.")
    return "\n".join(lines) + "\n"


def write_deployment(ctx: ToolContext, *, config_path: str, image: str = "",
                     constraints: ConstraintSet | None = None) -> dict[str, Any]:
    """Write and check the Deployments and the rollout plan from the capacity estimate."""
    config = _stream_config(ctx, config_path)
    capacity = read_json(ctx.workspace, STREAM_CAPACITY_PATH)
    problems = [] if capacity else [f"{STREAM_CAPACITY_PATH} is missing: run estimate_stream_capacity first"]
    cs = constraints if constraints is not None else ConstraintSet()
    name = str(config.get("name") or "stream-scoring")
    image = image or f"{name}:1.0.0"
    replicas = int(capacity.get("replicas") or _MIN_REPLICAS)
    memory = int(capacity.get("memory_request_mb") or 512)
    group = ((config.get("source") or {}).get("redis") or {}).get("group", "stream-scoring")
    if (config.get("source") or {}).get("kind") == "kafka":
        group = ((config.get("source") or {}).get("kafka") or {}).get("group_id", group)
    key = (config.get("sink") or {}).get("redis_key", "scores")
    secret = f"{name}-source"
    header = (f"# {{what}} of the streaming consumer {name} (generated; checked statically).\n"
              f"# Autoscaling: on consumer lag, not CPU (see {ROLLOUT_PATH}); replicas from {STREAM_CAPACITY_PATH}.\n")
    docs = {DEPLOYMENT_PATH: ("Deployment", _deployment(name, image=image, config_path=config_path, replicas=replicas,
                                                        memory_mb=memory, env={}, component="stream-consumer",
                                                        secret=secret), replicas),
            SHADOW_PATH: ("Shadow Deployment (own consumer group, own results key)",
                          _deployment(f"{name}-shadow", image=image, config_path=config_path, replicas=1,
                                      memory_mb=memory, env={"STREAM_GROUP": f"{group}-shadow",
                                                             "STREAM_SINK_KEY": f"{key}:shadow"},
                                      component="stream-consumer-shadow", secret=secret), 1),
            CANARY_PATH: ("Canary Deployment (production group, one replica)",
                          _deployment(f"{name}-canary", image=image, config_path=config_path, replicas=1,
                                      memory_mb=memory, env={}, component="stream-consumer-canary", secret=secret), 1)}
    files, checks = [], {}
    for path, (what, doc, planned) in docs.items():
        text = header.format(what=what) + yaml.safe_dump(doc, sort_keys=False)
        found = check_deployment(text, replicas=planned)
        checks[path] = found
        problems += [f"{path}: {p}" for p in found]
        files.append(ctx.write_text(path, text, kind="deployment").path)
    rules = stream_rules(cs)
    files.append(ctx.write_text(ROLLOUT_PATH, _rollout(name, config, capacity, rules), kind="doc").path)
    pin = _client_pin(str((config.get("source") or {}).get("kind", "redis")))
    requirements = ctx.workspace / "requirements.txt"
    if pin and requirements.is_file():
        listed = requirements.read_text()
        if pin.split("==")[0] not in {line.split("==")[0].strip() for line in listed.splitlines()}:
            files.append(ctx.write_text("requirements.txt", listed.rstrip("\n") + f"\n{pin}\n", kind="config").path)
    return {"status": "ok" if not problems else "failed", "path": DEPLOYMENT_PATH, "files": files,
            "replicas": replicas, "probes": ["/healthz (liveness, startup)", "/readyz (readiness)"],
            "checks": {p: ("ok" if not found else found) for p, found in checks.items()}, "problems": problems,
            "rollout": ROLLOUT_PATH, "image": image}


@tool(parse_docstring=True)
def estimate_stream_capacity(config_path: str = CONFIG_PATH, benchmark_messages: int = 5000,
                             events_per_second: float = 0.0, vcpu_hour_usd: float = 0.048,
                             constraints: list[str] | None = None, *, ctx: Ctx) -> str:
    """Measure one streaming-consumer replica's throughput end to end in the sandbox (the replay sample tiled
    to benchmark_messages) and size the Deployment: replicas for the sustained rate at 50% load, the
    autoscaling ceiling, Kafka partitions or Redis streams, expected end-to-end latency against the target,
    how fast a backlog of the lag limit drains, memory and cost. Writes reports/stream-capacity.json.

    Args:
        config_path: Workspace-relative streaming consumer YAML.
        benchmark_messages: Messages to replay for the measurement.
        events_per_second: Sustained rate; 0 to take the mission's, else the config's, else one derived from
            the batch volume (said as an assumption).
        vcpu_hour_usd: Price of one vCPU-hour used for the cost figure.
        constraints: The mission's constraint clauses; empty to use those recorded at alignment.
    """
    out = estimate_stream(ctx, config_path=config_path, benchmark_messages=benchmark_messages,
                          events_per_second=events_per_second, vcpu_hour_usd=vcpu_hour_usd,
                          constraints=release_constraints(ctx, constraints))
    ctx.write_text(STREAM_CAPACITY_PATH, json.dumps(out, indent=2), kind="report")
    return json.dumps({"status": "ok", "path": STREAM_CAPACITY_PATH, **{k: out[k] for k in (
        "verdict", "fits", "messages_per_second_per_replica", "sustained_rate", "rate_source", "replicas",
        "max_replicas", "partitions", "expected_latency_ms", "backlog_drain_seconds", "memory_request_mb", "cost",
        "findings")}})


@tool(parse_docstring=True)
def write_stream_deployment(config_path: str = CONFIG_PATH, image: str = "", constraints: list[str] | None = None,
                            *, ctx: Ctx) -> str:
    """Write the streaming consumer's Kubernetes Deployments (deploy/stream-deployment.yaml with the planned
    replicas, and the shadow consumer group and canary Deployments for the rollout), each with liveness,
    startup and readiness probes, and docs/stream-rollout.md (capacity, lag-based autoscaling note, rollout
    shadow -> canary -> promote with gates from the alert rules, rollback). Checks each manifest statically.

    Args:
        config_path: Workspace-relative streaming consumer YAML.
        image: Container image reference; defaults to <consumer name>:1.0.0.
        constraints: The mission's constraint clauses; empty to use those recorded at alignment.
    """
    return json.dumps(write_deployment(ctx, config_path=config_path, image=image,
                                       constraints=release_constraints(ctx, constraints)))


def stream_check_rows(workspace: Path, checks: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The streaming checks of the mission report: (name, detail, passed), from the validation results passed
    in (``consumer_*``) and the files the streaming tools wrote."""
    rows: list[tuple[str, str, bool]] = []
    # Figures from an earlier step hold only while what they ran on is unchanged: the fingerprint is checked here.
    ran = checks.get("consumer_checks_ran") or {}
    fresh = not ran or ran.get("fingerprint") == consumer_fingerprint(workspace)
    when = "" if not ran else (f" (run at {ran.get('step')}; code, tests, configs and model unchanged since: "
                               f"fingerprint {str(ran.get('fingerprint'))[:12]})" if fresh else
                               f" (run at {ran.get('step')}, but what they ran on changed since: stale)")
    if "consumer_dry_run" in checks:
        dry = checks["consumer_dry_run"] or {}
        rows.append(("Consumer dry run `python -m pipelines.streaming_scoring --dry-run`",
                     (f"exit code {dry.get('exit_code')}; {dry.get('messages')} messages replayed twice, "
                     f"{dry.get('lost')} lost, {dry.get('duplicates')} duplicated{when}"),
                     fresh and dry.get("exit_code") == 0 and dry.get("lost") == 0 and dry.get("duplicates") == 0))
    for key, label in (("consumer_tests", "Generated consumer tests (replay source, sandbox)"),
                       ("consumer_redis_test", ("Redis kill/restart test (SIGKILL mid-stream: zero lost, zero "
                                               "duplicated)"))):
        if key in checks:
            t = checks[key] or {}
            rows.append((label, (f"{t.get('passed')} passed, {t.get('failed')} failed, {t.get('errors')} errors, "
                                f"{t.get('skipped')} skipped{when}"),
                         fresh and t.get("failed") == 0 and t.get("errors") == 0 and not t.get("skipped")
                         and (t.get("passed") or 0) > 0))
    if "stream_alerts_expected" in checks:
        rules_file = workspace / RULES_PATH
        rules = (yaml.safe_load(rules_file.read_text()) or {}).get("rules", []) if rules_file.is_file() else []
        by_name = {r.get("name"): r for r in rules}
        expected = list(checks["stream_alerts_expected"] or [])
        missing = [n for n in expected if n not in by_name or by_name[n].get("source") != "mission"]
        detail = "; ".join(f"{r['name']} {r['threshold']:g} ({r.get('source')})" for r in rules) or "no rules"
        rows.append(("Stream alert rules from the mission's words",
                     detail + (f"; missing: {', '.join(missing)}" if missing else ""), bool(rules) and not missing))
    deployment = workspace / DEPLOYMENT_PATH
    if deployment.is_file():
        found = check_deployment(deployment.read_text())
        doc = yaml.safe_load(deployment.read_text()) if not found else {}
        rows.append(("Stream Deployment manifest (probes, not a CronJob)",
                     "; ".join(found) or f"Deployment, {get_path(doc, 'spec.replicas')} replicas, /healthz and /readyz "
                                          "probes, non-root", not found))
    capacity = read_json(workspace, STREAM_CAPACITY_PATH)
    if capacity:
        rows.append(("Stream capacity", str(capacity.get("verdict")), capacity.get("fits") is True))
    if (workspace / ROLLOUT_PATH).is_file():
        text = (workspace / ROLLOUT_PATH).read_text()
        needed = ("## Rollout: shadow consumer group -> canary -> promote", "## Rollback", "## Autoscaling on lag")
        absent = [h for h in needed if h not in text]
        rows.append(("Stream rollout and rollback plan", "; ".join(absent) and f"missing {absent}" or
                     "shadow consumer group -> canary -> promote, rollback, lag-based autoscaling", not absent))
    return rows
