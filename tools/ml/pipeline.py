"""Generation of the workspace's batch-scoring package from the templates in ``templates/batch_scoring``.

The generated code is self-contained: it needs numpy, pandas, scikit-learn, joblib, pyyaml and pydantic
(onnxruntime optional) and never imports this service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from langchain_core.tools import tool

from tools.context import Ctx, ToolContext
from tools.ml.alignment import ALIGNMENT_PATH, align
from tools.ml import sandboxed
from tools.ml.data import load_config, locate, read_json
from tools.ml.errors import DataError
from tools.ml.monitoring import ALERTS_PATH, alert_rules, render_rules
from tools.ml.report import TEMPLATES
from tools.workspace import resolve_in_workspace

__all__ = ["generate_pipeline", "generate_batch_pipeline", "PACKAGE_DIR", "TEST_PATH", "MODULES"]

PACKAGE_DIR = "pipelines/batch_scoring"
TEST_PATH = "tests/test_batch_scoring.py"
MODULES = ("__init__", "__main__", "config", "logs", "model", "monitoring", "metrics", "scoring")
GENERATOR = "tools.ml.pipeline v1"
DASHBOARD_SOURCE = (Path(__file__).parent / "dashboard_page.py").read_text()
"""``pipelines/batch_scoring/dashboard.py``: standard library only, so it runs in the workspace as it is."""
# Python templates use << name >> for substitutions: Python's own {{ }} (f-strings, dicts) stays literal.
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                   variable_start_string="<<", variable_end_string=">>")


def planned_config(workspace: Path, inputs: list[str]) -> dict[str, Any]:
    """The batch-scoring config :func:`generate_pipeline` writes when the workspace has none, from its layout."""
    return _config_from_inputs(workspace, locate(workspace, inputs))


def _config_from_inputs(workspace: Path, found: dict[str, Any]) -> dict[str, Any]:
    model_path = found.get("model_path") or "models/model"
    target = workspace / model_path
    artifact = model_path
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix in {".joblib", ".pkl", ".onnx"})
        artifact = files[0].relative_to(workspace).as_posix() if files else f"{model_path}/model.joblib"
    return {"name": "batch-scoring", "model": {"path": artifact},
            # With no data to score yet, the dry run scores the reference data.
            "input": {"path": found.get("current_path") or found.get("reference_path") or "data/input.csv",
                      "label_column": found.get("label_column")},
            "reference": {"path": found.get("reference_path") or "data/reference.csv"},
            "output": {"path": "outputs/scores.csv"}, "chunk_size": 50_000,
            "schedule": {"cron": "0 1 * * *", "timezone": "UTC", "window_hours": 2}}


def generate_pipeline(ctx: ToolContext, *, config_path: str = "pipelines/batch-scoring.yaml") -> dict[str, Any]:
    """Write the package, its tests, the updated config and the alert rules; return files and findings."""
    workspace = ctx.workspace
    resolve_in_workspace(workspace, config_path)
    findings: list[dict[str, str]] = []
    config = load_config(workspace, config_path)
    if not config:
        findings.append({"severity": "medium", "title": "no pipeline config",
                         "detail": f"{config_path!r} was missing: a default was written from the workspace layout"})
        config = planned_config(workspace, list(ctx.mission.inputs) if ctx.mission else [])
    model_path = str((config.get("model") or {}).get("path") or "")
    info = sandboxed.describe(ctx, model_path)  # a model that does not load stops here, naming the file
    features, model_name = info.features, info.name
    meta = Path(info.directory) / "model.yaml"
    if (workspace / meta).is_file():
        config.setdefault("model", {}).setdefault("metadata", meta.as_posix())
    for section in ("input", "reference"):
        path = (config.get(section) or {}).get("path")
        if path and not (workspace / path).is_file():
            raise DataError(f"the {section} data {path!r} named in {config_path!r} does not exist", path=path,
                            fix=f"put the {section} data there, or fix {section}.path in {config_path}")
    config.setdefault("output", {}).setdefault("alerts_path", "outputs/alerts.json")
    config["output"].setdefault("metrics_path", "outputs/metrics.json")
    config["monitoring"] = {"enabled": True, "rules": ALERTS_PATH}

    alignment = read_json(workspace, ALIGNMENT_PATH)
    if not alignment and features and (config.get("reference") or {}).get("path"):
        alignment = align(ctx, model_path=model_path, reference_path=config["reference"]["path"],
                          label_column=(config.get("input") or {}).get("label_column") or "")
    segment = (config.get("input") or {}).get("segment_column")
    rules = alert_rules(alignment, features=features, reference_path=(config.get("reference") or {}).get("path", ""),
                        segment_column=segment)

    written = []
    values = {"config_path": config_path, "model_name": model_name, "generator": GENERATOR, "version": "1.0.0"}
    written.append(ctx.write_text("pipelines/__init__.py", '"""Workspace pipelines."""\n', kind="pipeline").path)
    for module in MODULES:
        text = _ENV.get_template(f"batch_scoring/{module}.py.j2").render(**values)
        written.append(ctx.write_text(f"{PACKAGE_DIR}/{module}.py", text, kind="pipeline").path)
    # The history and dashboard code is the service's own module, copied: both write the same rows and page.
    written.append(ctx.write_text(f"{PACKAGE_DIR}/dashboard.py", DASHBOARD_SOURCE, kind="pipeline").path)
    written.append(ctx.write_text(TEST_PATH, _ENV.get_template("test_batch_scoring.py.j2").render(**values),
                                  kind="test").path)
    written.append(ctx.write_text(config_path, "# Batch scoring configuration (validated by "
                                  "pipelines/batch_scoring/config.py)\n" + yaml.safe_dump(config, sort_keys=False),
                                  kind="config").path)
    written.append(ctx.write_text(ALERTS_PATH, render_rules(rules), kind="config").path)
    return {"status": "ok",
            "package": PACKAGE_DIR, "files": written, "tests": TEST_PATH, "config": config_path,
            "alert_rules": [r["name"] for r in rules["rules"]],
            "commands": {"dry_run": "python -m pipelines.batch_scoring --dry-run", "tests": "tests/test_batch_scoring.py"},
            "findings": findings}


@tool(parse_docstring=True)
def generate_batch_pipeline(config_path: str = "pipelines/batch-scoring.yaml", *, ctx: Ctx) -> str:
    """Generate the modular batch-scoring package (pipelines/batch_scoring/: pydantic-validated config,
    structured logging, chunked scoring with flat memory, metrics, monitoring hooks that check drift and
    performance on every batch and raise alerts), its pytest tests (tests/test_batch_scoring.py), the
    alert rules (monitoring/alerts.yaml, from reports/alignment.json) and the updated config.
    Validate with `python -m pipelines.batch_scoring --dry-run` and the tests.

    Args:
        config_path: Workspace-relative pipeline YAML (created from the workspace layout if missing).
    """
    return json.dumps(generate_pipeline(ctx, config_path=config_path))
