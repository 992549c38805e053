"""Serving: a generated FastAPI inference app (online missions) for every model kind, its load test on
loopback in the sandbox, and a review of the batch scoring interface."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from langchain_core.tools import tool

from orchestrator.constraints import ConstraintSet
from orchestrator.errors import ToolError
from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.alignment import mission_constraints
from tools.ml.data import last_json, load_config, read_json, read_table
from tools.ml.errors import DataError, ModelError
from tools.ml.model import ModelInfo
from tools.ml.pipeline import planned_config
from tools.ml.report import TEMPLATES
from tools.sandbox import run_sandboxed

__all__ = ["generate_service", "generate_inference_service", "review", "review_scoring_interface", "feature_types",
           "load_test", "load_test_service", "load_test_check", "SERVICE_APP", "SERVICE_TESTS", "SERVICE_LOADTEST",
           "LOAD_TEST_PATH", "REVIEW_PATH"]

SERVICE_APP = "service/app.py"
SERVICE_TESTS = "tests/test_service.py"
SERVICE_LOADTEST = "service/loadtest.py"
LOAD_TEST_PATH = "reports/load-test.json"
REVIEW_PATH = "docs/scoring-interface-review.md"
DEFAULT_REQUESTS = 300
"""Requests of the load test: enough for a stable p95 (15 requests above it), a few seconds on loopback."""
_MAX_REQUESTS = 5000
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                   variable_start_string="<<", variable_end_string=">>", trim_blocks=True, lstrip_blocks=True)
_RESPONSES = {"binary": "the class (`label`), every class's probability and the positive class's `score`",
              "multiclass": "the class (`label`) and every class's probability, labels as the model holds them",
              "regression": "the predicted `value`", "anomaly": "an `anomaly` flag and its `score` (higher = more anomalous)"}
FeatureType = Literal["number", "string"]


def feature_types(info: ModelInfo, sample: pd.DataFrame, *, sample_path: str) -> dict[str, FeatureType]:
    """Each model feature's request type: ``string`` for text columns (categoricals a Pipeline encodes), else
    ``number``. An ONNX model's own input types win; otherwise the sample data's column types say.

    Raises :class:`DataError` when the sample lacks a feature (the generated tests could not send it).
    """
    onnx_inputs = {i["name"]: str(i.get("type", "")) for i in (info.description.get("onnx") or {}).get("inputs", [])}
    missing = [f for f in info.features if f not in sample.columns]
    if missing:
        raise DataError(f"the sample data {sample_path!r} lacks model features {missing[:10]}", path=sample_path,
                        fix="point sample_data_path at data with the model's feature columns (the reference data)")
    out: dict[str, FeatureType] = {}
    for name in info.features:
        if len(onnx_inputs) > 1 and name in onnx_inputs:
            out[name] = "string" if "string" in onnx_inputs[name] else "number"
        else:
            column = sample[name]
            numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
            out[name] = "number" if numeric else "string"
    if info.input != "frame" and len(onnx_inputs) <= 1 and "string" in out.values():
        texts = [f for f, t in out.items() if t == "string"]
        raise DataError(f"the model takes a numeric matrix but {sample_path!r} holds text in {texts[:10]}",
                        path=sample_path, fix="give the model numeric features, or serve a Pipeline that encodes them")
    return out


def generate_service(ctx: ToolContext, *, model_path: str, sample_data_path: str) -> dict[str, Any]:
    """Write ``service/app.py`` (FastAPI: validated /predict, /health, /metrics), its tests and its load test.

    The request schema is the model's features with their types; the response fits the model's kind.
    """
    info = sandboxed.describe(ctx, model_path)
    if not info.features:
        raise ModelError(f"{model_path!r} has no feature list", path=info.artifact,
                         fix="add 'features: [...]' (the input columns, in order) to model.yaml")
    types = feature_types(info, read_table(ctx.workspace, sample_data_path), sample_path=sample_data_path)
    values = {"model_name": info.name, "generator": "tools.ml.serving v2", "model_artifact": info.artifact,
              "features": json.dumps(info.features), "feature_types": json.dumps(types), "kind": info.kind,
              "classes": repr(info.classes), "positive_label": repr(info.positive_label),
              "anomaly_label": repr(info.anomaly_label), "input": info.input, "sample_data": sample_data_path,
              "schema": [{"name": f, "type": types[f]} for f in info.features], "response_text": _RESPONSES[info.kind]}
    files = [ctx.write_text("service/__init__.py", '"""Online inference service."""\n', kind="code").path,
             ctx.write_text(SERVICE_APP, _ENV.get_template("service/app.py.j2").render(**values), kind="code").path,
             ctx.write_text(SERVICE_LOADTEST, _ENV.get_template("service/loadtest.py.j2").render(**values),
                            kind="code").path,
             ctx.write_text(SERVICE_TESTS, _ENV.get_template("service/test_service.py.j2").render(**values),
                            kind="test").path]
    return {"status": "ok", "files": files, "app": "service.app:app", "tests": SERVICE_TESTS,
            "load_test": f"python -m service.loadtest --requests {DEFAULT_REQUESTS}", "kind": info.kind,
            "endpoints": ["POST /predict", "GET /health", "GET /metrics"], "features": len(info.features),
            "feature_types": types, "response": _RESPONSES[info.kind],
            "run": "uvicorn service.app:app --host 0.0.0.0 --port 8080", "warnings": info.warnings}


@tool(parse_docstring=True)
def generate_inference_service(model_path: str, sample_data_path: str, *, ctx: Ctx) -> str:
    """Generate an online inference app (FastAPI, service/app.py) for the model, whatever its kind: /predict
    with input validation (each feature required with its type: numbers finite, text columns as strings;
    unknown fields refused, batch size bounded) answering in the kind's shape (class and probabilities,
    value, or anomaly flag and score), /health and /metrics (Prometheus text), pytest tests
    (tests/test_service.py) and a loopback load test (service/loadtest.py). Run the tests with
    run_tests("tests/test_service.py") and the load test with load_test_service.

    Args:
        model_path: Workspace-relative model folder or artifact (ONNX or joblib).
        sample_data_path: CSV or Parquet file with the model's feature columns (the reference data), used for
            the feature types, by the generated tests and by the load test.
    """
    return json.dumps(generate_service(ctx, model_path=model_path, sample_data_path=sample_data_path))


def _targets(cs: ConstraintSet, latency: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for target in cs.latency:
        measured = latency.get(target.percentile)
        out.append({"percentile": target.percentile, "max_ms": target.max_ms, "measured_ms": measured,
                    "passed": measured is not None and measured <= target.max_ms, "source_text": target.source_text})
    return out


def load_test(ctx: ToolContext, *, requests: int = DEFAULT_REQUESTS, constraints: list[str] | None = None
              ) -> dict[str, Any]:
    """Run the generated load test in the sandbox (server and client on loopback, no network) and judge the
    latencies it measured against the mission's latency targets; writes :data:`LOAD_TEST_PATH`."""
    if not (ctx.workspace / SERVICE_LOADTEST).is_file():
        raise ToolError(f"{SERVICE_LOADTEST} does not exist: generate the service first (generate_inference_service)")
    if not 20 <= requests <= _MAX_REQUESTS:
        raise ToolError(f"requests={requests} is out of range: send between 20 and {_MAX_REQUESTS}")
    cs = mission_constraints(ctx, constraints)
    command = [sys.executable, "-m", "service.loadtest", "--requests", str(requests)]
    result = run_sandboxed(command, ctx.workspace, ctx.settings, readonly=True, max_output_bytes=4 << 20)
    answer = last_json(result.stdout) or {}
    if result.timed_out:
        raise ToolError(f"the load test did not finish within {ctx.settings.shell_timeout_s:g}s (shell_timeout_s): "
                        "send fewer requests or make the service faster")
    if result.exit_code != 0 or "latencies_ms" not in answer:
        why = answer.get("error") or result.stderr.strip()[-600:] or f"exit code {result.exit_code}"
        raise ToolError(f"the load test of {SERVICE_APP} failed: {why}")
    times = np.asarray(answer["latencies_ms"], dtype=np.float64)
    if not len(times):
        raise ToolError("the load test sent no timed request")
    latency = {f"p{q}": round(float(np.percentile(times, q)), 3) for q in (50, 95, 99)}
    latency.update(mean=round(float(times.mean()), 3), max=round(float(times.max()), 3))
    targets = _targets(cs, latency)
    errors = int(answer.get("errors") or 0)
    out = {"status": "ok", "path": LOAD_TEST_PATH, "requests": int(len(times)), "errors": errors,
           "statuses": answer.get("statuses") or {}, "warmup_requests": answer.get("warmup"),
           "rows_per_request": answer.get("rows_per_request"), "startup_seconds": answer.get("startup_seconds"),
           "latency_ms": latency, "targets": targets,
           "passes": errors == 0 and all(t["passed"] for t in targets),
           "method": f"{SERVICE_LOADTEST} in the sandbox: uvicorn on 127.0.0.1 in a child process, one client over "
                     "one keep-alive connection, one record per request; percentiles computed here from each "
                     "request's latency",
           "note": "" if targets else "the mission states no latency target: latency is reported, not judged"}
    ctx.write_text(LOAD_TEST_PATH, json.dumps(out, indent=2) + "\n", kind="report")
    return out


@tool(parse_docstring=True)
def load_test_service(requests: int = DEFAULT_REQUESTS, constraints: list[str] | None = None, *, ctx: Ctx) -> str:
    """Load-test the generated inference service on loopback inside the sandbox: start it, send `requests`
    one-record /predict calls, and report p50/p95/p99/mean/max latency and errors, judged against the
    mission's latency targets ("p95 latency under 50 ms"); writes reports/load-test.json.

    Args:
        requests: How many timed requests to send (20 to 5000), after 10 untimed warm-up requests.
        constraints: The constraint clauses in force; empty means the mission's own.
    """
    return json.dumps(load_test(ctx, requests=requests, constraints=constraints))


def load_test_check(workspace: Path) -> tuple[str, str, bool] | None:
    """The report's row for the load test (None when no load test ran)."""
    run = read_json(workspace, LOAD_TEST_PATH)
    if not run:
        return None
    lat = run.get("latency_ms") or {}
    judged = "; ".join(f"{t['percentile']} {t['measured_ms']} ms vs {t['max_ms']:g} ms "
                       f"{'met' if t['passed'] else 'MISSED'}" for t in run.get("targets") or [])
    return ("Service load test (latency)",
            f"{run.get('requests')} requests on loopback, {run.get('errors')} errors: p50 {lat.get('p50')} ms, "
            f"p95 {lat.get('p95')} ms, p99 {lat.get('p99')} ms; " + (judged or "no latency target stated"),
            bool(run.get("passes")))


def _check(ok: bool, title: str, detail: str, severity: str = "medium") -> dict[str, Any]:
    return {"ok": ok, "title": title, "detail": detail, "severity": "info" if ok else severity}


def review(ctx: ToolContext, *, config_path: str) -> dict[str, Any]:
    """Review the batch scoring interface: inputs against the model, outputs, failure behaviour.

    When the mission names no config and there is none yet, the one the implement step will write from the
    workspace layout is reviewed (a finding says so). Raises ``UnusableInput`` when a config the mission names
    (or, with no mission, the one asked about) is missing, or the model cannot be loaded.
    """
    config = load_config(ctx.workspace, config_path)
    checks: list[dict[str, Any]] = []
    inputs = [i.strip().removeprefix("./") for i in ctx.mission.inputs] if ctx.mission else None
    if not config and (inputs is None or config_path in inputs):  # asked about, or named by the mission
        raise DataError(f"the pipeline config {config_path!r} is missing or empty", path=config_path,
                        fix="write the batch-scoring config (model.path, input.path, reference.path, output.path)")
    if not config:  # none named, none yet: review the one the implement step will write from the layout
        config = planned_config(ctx.workspace, inputs or [])
        checks.append(_check(False, "pipeline config", f"{config_path!r} does not exist yet: this reviews the one "
                             "the implement step writes from the workspace layout (model "
                             f"{(config.get('model') or {}).get('path')}, input {(config.get('input') or {}).get('path')})",
                             "low"))
    model_cfg, input_cfg, output_cfg = config.get("model") or {}, config.get("input") or {}, config.get("output") or {}
    info = sandboxed.describe(ctx, str(model_cfg.get("path", "")))
    features = info.features
    checks.append(_check(info.format == "onnx", "model format",
                         f"{info.artifact} ({info.format}, {info.kind}); "
                         + ("ONNX: no code runs on load" if info.format == "onnx" else
                            "pickle-based: load only from the trusted image and verify its sha256 against the "
                            "registry; the ONNX export can replace it"), "low"))
    source = ctx.workspace / str(input_cfg.get("path", ""))
    header: list[str] = []
    if source.is_file() and source.stat().st_size:
        try:
            header = list(pd.read_parquet(source).columns) if source.suffix in (".parquet", ".pq") else \
                list(pd.read_csv(source, nrows=0).columns)
        except (ValueError, ImportError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            header = []
    missing = [f for f in features if f not in header]
    checks.append(_check(bool(header) and not missing, "input columns cover the model features",
                         f"{len(features)} features expected; missing: {missing or 'none'}", "high"))
    id_col = input_cfg.get("id_column")
    checks.append(_check(bool(id_col) and id_col in header, "record id passed through",
                         f"id column {id_col!r}: every output row can be joined back to its input"
                         if id_col else "no id_column configured: outputs cannot be joined back to inputs"))
    checks.append(_check(True, "output schema",
                         f"{output_cfg.get('path', 'outputs/scores.csv')}: [{id_col or 'no id'}, score, flag]; "
                         "score higher = more anomalous, flag 1 = alert; written to a .partial file and renamed, "
                         "so consumers never read a half-written file"))
    chunk = int(config.get("chunk_size") or 0)
    checks.append(_check(0 < chunk <= 500_000, "bounded memory", f"chunk_size {chunk}: memory is flat in the input size"))
    label = input_cfg.get("label_column")
    checks.append(_check(True, "labels optional",
                         f"label column {label!r} feeds precision monitoring when present; otherwise the alert-rate "
                         "rule stands in" if label else "no labels configured: monitoring uses the alert rate"))
    generated = (ctx.workspace / "pipelines/batch_scoring/__main__.py").is_file()
    checks.append(_check(True, "entry point", "python -m pipelines.batch_scoring [--dry-run]; exit 0 ok, 1 runtime "
                         "error, 2 bad config" + ("" if generated else " (package generated in the implement step)")))
    return {"checks": checks, "input_path": str(input_cfg.get("path", "")), "missing_features": missing,
            "header_read": bool(header)}


@tool(parse_docstring=True)
def review_scoring_interface(config_path: str = "pipelines/batch-scoring.yaml", *, ctx: Ctx) -> str:
    """Review the batch scoring interface as a consumer would (inputs vs model features, record ids,
    output schema, atomic writes, memory bounds, label handling, entry point) and write the review to
    docs/scoring-interface-review.md.

    Args:
        config_path: Workspace-relative pipeline YAML.
    """
    result = review(ctx, config_path=config_path)
    lines = ["# Scoring interface review", "", f"Configuration: `{config_path}`. Batch mission: no online endpoint "
             "is built; this review covers the interface the nightly job exposes.", "",
             "| Check | Result | Detail |", "|---|---|---|"]
    lines += [f"| {c['title']} | {'ok' if c['ok'] else c['severity']} | {c['detail']} |" for c in result["checks"]]
    ctx.write_text(REVIEW_PATH, "\n".join(lines) + "\n", kind="doc")
    problems = [c for c in result["checks"] if not c["ok"]]
    if not result["header_read"] or result["missing_features"]:
        path = result["input_path"]
        raise DataError(f"the scoring input {path!r} does not provide the model's features "
                        f"(missing: {result['missing_features'][:10] or 'the file cannot be read'}); review written to "
                        f"{REVIEW_PATH}", path=path, fix="point input.path of the config at data with the model's "
                                                         "feature columns")
    return json.dumps({"status": "ok", "path": REVIEW_PATH, "checks": len(result["checks"]), "problems": problems})
