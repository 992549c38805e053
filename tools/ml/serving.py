"""Serving: a generated FastAPI inference app (online missions) and a review of the batch scoring interface."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.data import load_config
from tools.ml.errors import DataError, ModelError
from tools.ml.report import TEMPLATES

__all__ = ["generate_service", "generate_inference_service", "review", "review_scoring_interface",
           "SERVICE_APP", "SERVICE_TESTS", "REVIEW_PATH"]

SERVICE_APP = "service/app.py"
SERVICE_TESTS = "tests/test_service.py"
REVIEW_PATH = "docs/scoring-interface-review.md"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                   variable_start_string="<<", variable_end_string=">>")


def generate_service(ctx: ToolContext, *, model_path: str, sample_data_path: str) -> dict[str, Any]:
    """Write ``service/app.py`` (FastAPI: validated /predict, /health, /metrics) and its tests."""
    info = sandboxed.describe(ctx, model_path)
    if not info.features:
        raise ModelError(f"{model_path!r} has no feature list", path=info.artifact,
                         fix="add 'features: [...]' (the input columns, in order) to model.yaml")
    flag = info.anomaly_label if info.kind == "anomaly" else info.positive_label
    values = {"model_name": info.name, "generator": "tools.ml.serving v1", "model_artifact": info.artifact,
              "features": json.dumps(info.features), "kind": info.kind, "flag_label": repr(flag),
              "sample_data": sample_data_path}
    files = [ctx.write_text("service/__init__.py", '"""Online inference service."""\n', kind="code").path,
             ctx.write_text(SERVICE_APP, _ENV.get_template("service/app.py.j2").render(**values), kind="code").path,
             ctx.write_text(SERVICE_TESTS, _ENV.get_template("service/test_service.py.j2").render(**values),
                            kind="test").path]
    return {"status": "ok", "files": files, "app": "service.app:app", "tests": SERVICE_TESTS,
            "endpoints": ["POST /predict", "GET /health", "GET /metrics"], "features": len(info.features),
            "run": "uvicorn service.app:app --host 0.0.0.0 --port 8080", "warnings": info.warnings}


@tool(parse_docstring=True)
def generate_inference_service(model_path: str, sample_data_path: str, *, ctx: Ctx) -> str:
    """Generate an online inference app (FastAPI, service/app.py) for the model: /predict with input
    validation (every feature a required finite float, unknown fields refused, batch size bounded),
    /health and /metrics (Prometheus text), plus pytest tests (tests/test_service.py). Run the tests with
    run_tests("tests/test_service.py").

    Args:
        model_path: Workspace-relative model folder or artifact (ONNX or joblib).
        sample_data_path: CSV with the model's feature columns, used by the generated tests.
    """
    return json.dumps(generate_service(ctx, model_path=model_path, sample_data_path=sample_data_path))


def _check(ok: bool, title: str, detail: str, severity: str = "medium") -> dict[str, Any]:
    return {"ok": ok, "title": title, "detail": detail, "severity": "info" if ok else severity}


def review(ctx: ToolContext, *, config_path: str) -> dict[str, Any]:
    """Review the batch scoring interface: inputs against the model, outputs, failure behaviour.

    Raises ``UnusableInput`` when the config is missing or the model cannot be loaded.
    """
    config = load_config(ctx.workspace, config_path)
    if not config:
        raise DataError(f"the pipeline config {config_path!r} is missing or empty", path=config_path,
                        fix="write the batch-scoring config (model.path, input.path, reference.path, output.path)")
    checks: list[dict[str, Any]] = []
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
