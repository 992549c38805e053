"""Streaming missions: the consumer's design (source, micro-batch, delivery semantics, state), its alert rules
from the mission's words, and the generated consumer package beside the batch one.

The consumer (``pipelines/streaming_scoring``) imports the batch package's model loading, scoring, drift
monitoring and logging instead of copying them, so the stream and the nightly batch score and alert alike.
Its generated tests run in the sandbox on the replay source; one of them starts a private Redis inside the
sandbox, kills the consumer mid-stream with SIGKILL and checks that no message was lost or counted twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet, format_duration
from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.data import DataError, load_config, read_table
from tools.ml.pipeline import PACKAGE_DIR as BATCH_PACKAGE
from tools.ml.pipeline import generate_pipeline
from tools.ml.report import TEMPLATES
from tools.ml.schedule import release_constraints

__all__ = [
    "CONFIG_PATH",
    "DESIGN_PATH",
    "MODULES",
    "PACKAGE_DIR",
    "REDIS_TEST_PATH",
    "RULES_PATH",
    "SAMPLE_PATH",
    "TEST_PATH",
    "StreamDesign",
    "consumer_fingerprint",
    "generate_consumer",
    "generate_streaming_consumer",
    "stream_design",
    "stream_rules",
    "write_stream_design",
]

PACKAGE_DIR = "pipelines/streaming_scoring"
CONFIG_PATH = "pipelines/streaming-scoring.yaml"
RULES_PATH = "monitoring/stream-alerts.yaml"
SAMPLE_PATH = "data/stream-sample.jsonl"
TEST_PATH = "tests/test_streaming_scoring.py"
REDIS_TEST_PATH = "tests/test_streaming_redis.py"
DESIGN_PATH = "docs/streaming-design.md"
MODULES = ("__init__", "__main__", "config", "messages", "sources", "sinks", "windows", "health", "consumer")
GENERATOR = "tools.ml.streaming v1"
SAMPLE_ROWS = 300
DEFAULT_LAG_SECONDS = 60.0
DEFAULT_LATENCY_MS = 5000.0
DEFAULT_DEAD_LETTER_RATE = 0.01
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                   variable_start_string="<<", variable_end_string=">>")
SourceKind = Literal["redis", "kafka", "file"]
_STREAM_UNITS = {"events", "messages", "records", "transactions", "rows", "requests", "predictions", "items"}


def _source_from_words(words: str) -> tuple[SourceKind, list[dict[str, str]]]:
    """The source the mission names: Kafka, Redis Streams (the default), or a warning for one we lack."""
    text = words.lower()
    if re.search(r"\bkafka\b", text):
        return "kafka", []
    if re.search(r"\b(kinesis|pub/?sub|event hubs?|pulsar|rabbitmq)\b", text):
        named = re.search(r"\b(kinesis|pub/?sub|event hubs?|pulsar|rabbitmq)\b", text).group(1)
        return "redis", [{"severity": "medium", "title": f"no {named} adapter",
                          "detail": f"the mission names {named}; the consumer has Redis Streams and Kafka adapters: "
                                    "Redis Streams is configured, change source.kind or add an adapter"}]
    return "redis", []


def _stream_name(words: str) -> str:
    """The stream or topic the mission names ("the transactions stream", "topic payments"), else ``events``."""
    skip = {"redis", "kafka", "a", "an", "the", "from", "of", "in", "on", "to", "as", "and", "event", "data", "real",
            "near", "kinesis", "streaming", "consumer"}
    for pattern in (r"\bthe\s+([a-z][\w.:-]{1,60})\s+(?:stream|topic|events)\b",
                    r"\b(?:stream|topic)\s+(?:named\s+|called\s+)?[`'\"]?([a-z][\w.:-]{1,60})",
                    r"\b([a-z][\w.:-]{1,60})\s+(?:stream|topic)\b"):
        for found in re.finditer(pattern, words, re.IGNORECASE):
            if found.group(1).lower() not in skip:
                return found.group(1).lower()
    return "events"


class StreamDesign(dict):
    """The design decisions as plain data (what ``docs/streaming-design.md`` says and the config holds)."""


def stream_rules(cs: ConstraintSet) -> list[dict[str, Any]]:
    """The stream's alert rules: lag and latency from the mission's words, else stated defaults."""
    rules: list[dict[str, Any]] = []
    for rule in cs.alerts:
        if rule.metric in ("consumer_lag_seconds", "consumer_lag_messages") or (
                rule.metric.startswith("latency_") and rule.metric.endswith("_ms")):
            rules.append({"name": rule.name, "metric": rule.metric, "direction": rule.direction,
                          "threshold": rule.threshold, "source": "mission", "source_text": rule.source_text,
                          "fires_when": rule.describe()})
    metrics = {r["metric"] for r in rules}
    if "consumer_lag_seconds" not in metrics:
        rules.append({"name": "consumer_lag_seconds_above", "metric": "consumer_lag_seconds", "direction": "above",
                      "threshold": DEFAULT_LAG_SECONDS, "source": "default",
                      "source_text": "no lag limit stated", "fires_when": f"consumer_lag_seconds above {DEFAULT_LAG_SECONDS:g}"})
    if not any(m.startswith("latency_") for m in metrics):
        rules.append({"name": "latency_p95_ms_above", "metric": "latency_p95_ms", "direction": "above",
                      "threshold": DEFAULT_LATENCY_MS, "source": "default", "source_text": "no latency limit stated",
                      "fires_when": f"latency_p95_ms above {DEFAULT_LATENCY_MS:g}"})
    rules.append({"name": "dead_letter_rate_above", "metric": "dead_letter_rate", "direction": "above",
                  "threshold": DEFAULT_DEAD_LETTER_RATE, "source": "default",
                  "source_text": "poison messages above 1% of the window",
                  "fires_when": f"dead_letter_rate above {DEFAULT_DEAD_LETTER_RATE:g}"})
    return rules


def _rate(cs: ConstraintSet) -> tuple[float, str] | None:
    for target in cs.throughput:
        if target.unit in _STREAM_UNITS and target.per_second is not None:
            return target.per_second, target.source_text
    return None


def stream_design(cs: ConstraintSet, *, words: str, source: str = "", name: str = "") -> StreamDesign:
    """Decide the source, the micro-batch (size and interval), the delivery semantics and the state."""
    kind, findings = (source, []) if source in ("redis", "kafka", "file") else _source_from_words(words)
    stream = _stream_name(words)
    latency = min((t.max_ms for t in cs.latency), default=None)
    lag = next((r.threshold for r in cs.alerts if r.metric == "consumer_lag_seconds" and r.threshold), None)
    # The interval is a small share of the tightest budget: a message waits at most one interval for its batch.
    budget_ms = min(x for x in (latency, lag * 1000 if lag else None, 2000.0) if x is not None)
    max_wait_ms = int(max(20, min(1000, budget_ms / 4)))
    rate = _rate(cs)
    max_messages = int(min(5000, max(50, math.ceil(rate[0] * max_wait_ms / 1000)))) if rate else 500
    return StreamDesign(
        source=kind, stream=stream, group=f"{name or 'stream'}-scoring", max_messages=max_messages,
        max_wait_ms=max_wait_ms, interval_source=("latency target" if latency == budget_ms else "lag limit"
                                                  if lag and lag * 1000 == budget_ms else "default 2 s budget"),
        rate=rate[0] if rate else None, rate_source=rate[1] if rate else None,
        semantics="at-least-once delivery with idempotent writes keyed by message id (each message ends as "
                  "exactly one result or one dead letter)",
        findings=findings)


def _stream_config(design: StreamDesign, batch_config: str, name: str) -> dict[str, Any]:
    stream = design["stream"]
    return {
        "name": name, "batch_config": batch_config,
        "source": {"kind": design["source"],
                   "redis": {"url": "redis://127.0.0.1:6379/0", "stream": stream, "group": design["group"],
                             "start": "earliest", "block_ms": 500, "claim_idle_ms": 30_000,
                             "dead_letter": f"{stream}:dead-letter"},
                   "kafka": {"bootstrap_servers": "localhost:9092", "topic": stream, "group_id": design["group"],
                             "client": "auto", "start": "earliest"},
                   "file": {"path": SAMPLE_PATH, "checkpoint": "outputs/stream/replay.offset"}},
        "sink": {"kind": "redis", "redis_key": f"{stream}:scores", "sqlite_path": "outputs/stream/results.sqlite"},
        "micro_batch": {"max_messages": design["max_messages"], "max_wait_ms": design["max_wait_ms"]},
        "backpressure": {"max_retries": 5, "retry_backoff_ms": 200, "max_backoff_ms": 10_000},
        "windows": {"pane_seconds": 60, "panes": 15, "evaluate_every_seconds": 10},
        "monitoring": {"rules": RULES_PATH, "metrics_path": "outputs/stream/metrics.json",
                       "alerts_path": "outputs/stream/alerts.json"},
        "health": {"port": 0, "stale_after_seconds": 60},
        "sample": SAMPLE_PATH,
        **({"expected_events_per_second": design["rate"]} if design.get("rate") else {}),
    }


def _render_rules(rules: list[dict[str, Any]]) -> str:
    return ("# Stream alert rules, read by pipelines/streaming_scoring on every window (with the batch rules of\n"
            "# monitoring/alerts.yaml for drift and performance). source: mission = from the mission's words.\n"
            + yaml.safe_dump({"version": 1, "rules": rules}, sort_keys=False))


def _design_doc(design: StreamDesign, rules: list[dict[str, Any]], cs: ConstraintSet, batch_config: str) -> str:
    src = design["source"]
    where = {"redis": f"Redis Streams: stream `{design['stream']}`, consumer group `{design['group']}`",
             "kafka": f"Kafka: topic `{design['stream']}`, consumer group `{design['group']}` (confluent-kafka or "
                      "kafka-python, chosen by `source.kafka.client`)",
             "file": f"a replayed JSON-lines file (`{SAMPLE_PATH}`)"}[src]
    lines = ["# Streaming design", "",
             f"- **Source**: {where}. A file replay source serves the tests and `--dry-run`.",
             f"- **Micro-batch**: up to {design['max_messages']} messages or {design['max_wait_ms']} ms, whichever "
             f"comes first (interval from the {design['interval_source']}"
             + (f"; size from the stated rate, {design['rate_source']}" if design.get("rate_source") else "") + ").",
             (f"- **Delivery semantics**: {design['semantics']}. Results and dead letters are written first, the "
             "position is committed (Redis `XACK`, Kafka offset commit) only after: a consumer killed in between "
             "gets the batch again and overwrites its own results."),
             ("- **Poison messages**: a message that is not a record, lacks a feature or holds a non-numeric value "
             "goes to the dead letters with its reason, kept in the sink beside the results and keyed the same way "
             "(written before the commit, so never lost nor doubled); the rest of its micro-batch is scored."),
             ("- **State**: the position lives in the broker (consumer-group offsets / pending entries), results in "
             "the sink keyed by message id, and the sliding drift windows in memory (15 panes of 60 s), rebuilt "
             "after a restart: replicas keep nothing on disk and any replica can take over another's messages."),
             ("- **Backpressure**: pull-based; the next micro-batch is fetched only once the previous one is written "
             "and acknowledged; a failing sink is retried with capped exponential backoff while nothing is fetched."),
             "- **Shutdown**: SIGTERM finishes the micro-batch in hand, writes the figures and exits 0.",
             (f"- **Shared code**: model loading, scoring, schema checks, drift monitoring and logging are imported "
             f"from `{BATCH_PACKAGE}` (configured by `{batch_config}`), not copied."), "",
             "## Alert rules", "", "| Alert | Threshold | From |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['threshold']:g} | {'the mission: ' + repr(r['source_text']) if r['source'] == 'mission' else 'default (' + r['source_text'] + ')'} |"
              for r in rules]
    lines += ["", "Drift and performance over the sliding window use the batch rules (`monitoring/alerts.yaml`).", ""]
    if cs.not_understood:
        lines += ["Constraints not understood (not applied): " + "; ".join(cs.not_understood) + ".", ""]
    if design.get("rate"):
        lines.append(f"Sustained rate to plan for: {design['rate']:g} events/s ({design['rate_source']}).")
    else:
        lines.append("No sustained rate stated: the capacity estimate derives one from the batch volume.")
    lag = next((r for r in rules if r["metric"] == "consumer_lag_seconds"), None)
    if lag is not None:
        lines.append(f"Lag limit: {format_duration(lag['threshold'])} ({lag['source']}).")
    return "\n".join(lines) + "\n"


def write_design(ctx: ToolContext, *, objective: str, constraints: list[str] | None, source: str = "",
                 batch_config: str = "pipelines/batch-scoring.yaml") -> dict[str, Any]:
    """Decide and write the consumer's design, its config and its alert rules."""
    cs = release_constraints(ctx, constraints)
    batch = load_config(ctx.workspace, batch_config)
    name = str(batch.get("name") or "scoring").replace("batch-scoring", "").strip("-") or "scoring"
    words = " ".join([objective, *cs.clauses])
    design = stream_design(cs, words=words, source=source, name=name)
    rules = stream_rules(cs)
    config = _stream_config(design, batch_config, f"{name}-stream-scoring")
    files = [ctx.write_text(DESIGN_PATH, _design_doc(design, rules, cs, batch_config), kind="doc").path,
             ctx.write_text(CONFIG_PATH, "# Streaming consumer configuration (validated by "
                                         "pipelines/streaming_scoring/config.py)\n"
                            + yaml.safe_dump(config, sort_keys=False), kind="config").path,
             ctx.write_text(RULES_PATH, _render_rules(rules), kind="config").path]
    return {"status": "ok", "path": DESIGN_PATH, "config": CONFIG_PATH, "rules_path": RULES_PATH, "files": files,
            "source": design["source"], "stream": design["stream"], "group": design["group"],
            "micro_batch": {"max_messages": design["max_messages"], "max_wait_ms": design["max_wait_ms"]},
            "semantics": design["semantics"],
            "state": "offsets in the broker, results keyed by message id in the sink, drift windows in memory",
            "alert_rules": [{k: r[k] for k in ("name", "metric", "threshold", "source")} for r in rules],
            "findings": design["findings"], "not_understood": list(cs.not_understood)}


def _sample(ctx: ToolContext, batch: dict[str, Any], features: list[str]) -> str:
    """The replay sample: the first rows of the batch input, one JSON record per line."""
    path = str((batch.get("input") or {}).get("path") or (batch.get("reference") or {}).get("path") or "")
    frame = read_table(ctx.workspace, path).head(SAMPLE_ROWS)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DataError(f"the batch input {path!r} lacks the model's features {missing[:5]}", path=path,
                        fix="point input.path of the batch config at data with the model's features")
    records = frame.astype(object).where(pd.notna(frame), None).to_dict(orient="records")
    return "".join(json.dumps(r, default=str) + "\n" for r in records)


def generate_consumer(ctx: ToolContext, *, config_path: str = CONFIG_PATH,
                      batch_config: str = "pipelines/batch-scoring.yaml",
                      constraints: list[str] | None = None) -> dict[str, Any]:
    """Write the consumer package, its config (if missing), rules, replay sample and tests."""
    findings: list[dict[str, str]] = []
    if not (ctx.workspace / config_path).is_file():
        if config_path != CONFIG_PATH:
            raise DataError(f"the streaming config {config_path!r} does not exist", path=config_path,
                            fix=f"write it with write_stream_design, or pass {CONFIG_PATH!r} to have it designed")
        write_design(ctx, objective="", constraints=constraints, batch_config=batch_config)
    if not (ctx.workspace / BATCH_PACKAGE / "__main__.py").is_file():
        findings.append({"severity": "info", "title": "batch package generated first",
                         "detail": f"the consumer imports {BATCH_PACKAGE}: it was generated from {batch_config}"})
        generate_pipeline(ctx, config_path=batch_config)
    stream_cfg = load_config(ctx.workspace, config_path)
    batch_config = str(stream_cfg.get("batch_config") or batch_config)
    batch = load_config(ctx.workspace, batch_config)
    info = sandboxed.describe(ctx, str((batch.get("model") or {}).get("path") or ""))
    cs = release_constraints(ctx, constraints)
    rules = stream_rules(cs)
    values = {"config_path": config_path, "model_name": info.name, "generator": GENERATOR, "version": "1.0.0",
              "rules": [r["name"] for r in rules], "batch_config": batch_config}
    written = []
    for module in MODULES:
        text = _ENV.get_template(f"streaming/{module}.py.j2").render(**values)
        written.append(ctx.write_text(f"{PACKAGE_DIR}/{module}.py", text, kind="pipeline").path)
    for template, target in (("streaming/test_streaming_scoring.py.j2", TEST_PATH),
                             ("streaming/test_streaming_redis.py.j2", REDIS_TEST_PATH)):
        written.append(ctx.write_text(target, _ENV.get_template(template).render(**values), kind="test").path)
    written.append(ctx.write_text(RULES_PATH, _render_rules(rules), kind="config").path)
    sample = str(stream_cfg.get("sample") or SAMPLE_PATH)
    written.append(ctx.write_text(sample, _sample(ctx, batch, list(info.features)), kind="data").path)
    return {"status": "ok", "package": PACKAGE_DIR, "files": written, "config": config_path,
            "tests": [TEST_PATH, REDIS_TEST_PATH], "sample": sample, "shares": BATCH_PACKAGE,
            "source": (stream_cfg.get("source") or {}).get("kind"),
            "alert_rules": [{k: r[k] for k in ("name", "metric", "threshold", "source")} for r in rules],
            "commands": {"dry_run": "python -m pipelines.streaming_scoring --dry-run",
                         "tests": TEST_PATH, "redis_restart_test": REDIS_TEST_PATH},
            "findings": findings}


def consumer_fingerprint(workspace: Path, config_path: str = CONFIG_PATH) -> str:
    """SHA-256 over everything the consumer's checks depend on: both generated packages' code, the consumer's
    tests, configs, alert rules and replay sample, and the model file the batch config names. Equal fingerprints
    mean a check run earlier would run on the same inputs."""
    paths = {config_path, TEST_PATH, REDIS_TEST_PATH, RULES_PATH, SAMPLE_PATH, "monitoring/alerts.yaml"}
    for package in (PACKAGE_DIR, BATCH_PACKAGE):
        root = workspace / package
        paths |= {str(p.relative_to(workspace)) for p in root.rglob("*.py")} if root.is_dir() else set()
    try:
        stream = yaml.safe_load((workspace / config_path).read_text()) or {}
        batch_config = str(stream.get("batch_config") or "pipelines/batch-scoring.yaml")
        model = (yaml.safe_load((workspace / batch_config).read_text()) or {}).get("model") or {}
        paths |= {batch_config, *(str(model[k]) for k in ("path", "metadata") if model.get(k))}
        paths |= {str(stream.get("sample") or SAMPLE_PATH)}
    except (OSError, yaml.YAMLError, AttributeError):
        pass  # a missing or broken config: what is there is hashed, and the checks will say what is wrong
    digest = hashlib.sha256()
    for rel in sorted(paths):
        target = workspace / rel
        digest.update(rel.encode() + b"\0")
        files = [target] if target.is_file() else sorted(f for f in target.rglob("*") if f.is_file()) \
            if target.is_dir() else []
        for file in files:
            digest.update(str(file.relative_to(workspace)).encode() + hashlib.sha256(file.read_bytes()).digest())
        digest.update(b"" if files else b"absent")
    return digest.hexdigest()


@tool(parse_docstring=True)
def write_stream_design(objective: str, constraints: list[str] | None = None, source: str = "",
                        batch_config: str = "pipelines/batch-scoring.yaml", *, ctx: Ctx) -> str:
    """Design the streaming consumer: the source (Redis Streams or Kafka, from the mission's words), the
    stream or topic, the micro-batch size and interval (from the latency and lag limits), the delivery
    semantics (at-least-once, idempotent writes keyed by message id) and the state it keeps. Writes
    docs/streaming-design.md, pipelines/streaming-scoring.yaml and monitoring/stream-alerts.yaml (lag and
    latency rules from the mission's constraints, defaults said as such).

    Args:
        objective: The mission's objective sentence (names the stream and the source).
        constraints: The mission's constraint clauses (e.g. ["alert when consumer lag exceeds 30 s"]); empty to
            use those recorded at alignment.
        source: redis, kafka or file; empty to read it from the mission's words.
        batch_config: The batch pipeline's YAML whose model, reference and rules the consumer shares.
    """
    return json.dumps(write_design(ctx, objective=objective, constraints=constraints, source=source,
                                   batch_config=batch_config))


@tool(parse_docstring=True)
def generate_streaming_consumer(config_path: str = CONFIG_PATH, batch_config: str = "pipelines/batch-scoring.yaml",
                                constraints: list[str] | None = None, *, ctx: Ctx) -> str:
    """Generate the streaming consumer beside the batch package (pipelines/streaming_scoring/: Redis Streams,
    Kafka and file-replay sources, micro-batches scored with the batch package's code, idempotent writes keyed
    by message id, acknowledgement after the writes, dead letters with the reason, backpressure, SIGTERM
    shutdown, lag/throughput/latency/drift over sliding windows, HTTP probes), its tests
    (tests/test_streaming_scoring.py on the replay source; tests/test_streaming_redis.py: a private Redis, the
    consumer killed mid-stream and restarted, no message lost or doubled) and a replay sample. Validate with
    `python -m pipelines.streaming_scoring --dry-run` and both test files.

    Args:
        config_path: Workspace-relative consumer YAML (written from the mission if missing).
        batch_config: The batch pipeline's YAML (generated first if its package is missing).
        constraints: The mission's constraint clauses; empty to use those recorded at alignment.
    """
    return json.dumps(generate_consumer(ctx, config_path=config_path, batch_config=batch_config,
                                        constraints=constraints))
