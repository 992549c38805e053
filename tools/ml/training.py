"""The training pipeline: a generated ``pipelines/training`` package that retrains the model from the repository
alone (pinned data fingerprints, the production estimator's class and parameters, a fixed seed), evaluates the
candidate on held-out rows and registers it with its metrics; and the Data Scientist's retraining, which runs
that package in the sandbox and checks its figures against the host's own.

    pipelines/training.yaml          config: model, features, label, seed, data sha256, holdout, output
    pipelines/training/              __init__, __main__ (CLI), config (pydantic), train (fit, evaluate, register)
    tests/test_training.py           pinned data enforced; a re-run reproduces the registered metrics
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from langchain_core.tools import tool

from orchestrator.errors import ToolError
from tools.context import Ctx, ToolContext
from tools.ml import sandboxed
from tools.ml.alignment import ALIGNMENT_PATH
from tools.ml.data import fingerprint, last_json, read_json, read_table
from tools.ml.errors import DataError
from tools.ml.metrics import figures, outcome
from tools.ml.model import locate_model
from tools.ml.remediation import HOLDOUT_MODULO
from tools.ml.report import TEMPLATES
from tools.ml.rules import check_metrics
from tools.sandbox import run_sandboxed

__all__ = ["TRAINING_CONFIG", "TRAINING_PACKAGE", "TRAINING_TEST", "TRAINING_METRICS", "generate_training",
           "generate_training_pipeline", "run_training", "run_training_pipeline", "training_check"]

TRAINING_CONFIG = "pipelines/training.yaml"
TRAINING_PACKAGE = "pipelines/training"
TRAINING_TEST = "tests/test_training.py"
TRAINING_METRICS = "reports/training-metrics.json"
_MODULES = ("__init__", "__main__", "config", "train")
_GENERATOR = "tools.ml.training v1"
_TOLERANCE = 1e-6
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                   variable_start_string="<<", variable_end_string=">>")


def generate_training(ctx: ToolContext, *, model_path: str, reference_path: str, current_path: str,
                      label_column: str = "") -> dict[str, Any]:
    """Write the package, its config (data pinned by sha256) and its test; the model is described in the sandbox."""
    info = sandboxed.describe(ctx, model_path)
    if info.format == "onnx":
        raise ToolError(f"{info.artifact!r} is ONNX only: the training pipeline clones the scikit-learn estimator; "
                        "provide the joblib artifact beside it")
    label = label_column or (read_json(ctx.workspace, ALIGNMENT_PATH).get("label_column")) or info.label_column or ""
    data = {"reference": fingerprint(ctx.workspace, reference_path), "current": fingerprint(ctx.workspace, current_path)}
    for role, fp in data.items():
        if label not in fp["columns"]:  # no training pipeline then; the data itself is usable for scoring
            raise ToolError(f"the {role} data {fp['path']!r} has no {label or 'label'!r} column: training needs "
                            "labels; name the ground-truth column (label_column), or add it to the data")
    floor = (((read_json(ctx.workspace, ALIGNMENT_PATH).get("thresholds") or {}).get("metrics") or {})
             .get("precision") or {}).get("floor")
    description = info.description or {}
    seeds = description.get("seeds") or {}
    meta = Path(info.directory) / "model.yaml"
    config = {
        "name": f"{info.name}-training", "base_model": info.artifact,
        "base_metadata": meta.as_posix() if (ctx.workspace / meta).is_file() else None,
        "estimator": {"class": f"{description.get('module', '')}.{description.get('estimator', info.estimator)}",
                      "params": description.get("params") or {}},
        "kind": info.kind, "features": list(info.features), "label_column": label,
        "seed": seeds.get("random_state"),
        "reference": {k: data["reference"][k] for k in ("path", "sha256", "rows")},
        "current": {k: data["current"][k] for k in ("path", "sha256", "rows")},
        "holdout": {"modulo": HOLDOUT_MODULO, "remainder": 0}, "min_precision": floor,
        "output": {"model_dir": f"{info.directory}-candidate", "metrics": TRAINING_METRICS},
        "registry": "registry/index.json", "check": {"tolerance": _TOLERANCE},
    }
    values = {"config_path": TRAINING_CONFIG, "model_name": info.name, "generator": _GENERATOR, "version": "1.0.0"}
    written = [ctx.write_text("pipelines/__init__.py", '"""Workspace pipelines."""\n', kind="pipeline").path] \
        if not (ctx.workspace / "pipelines/__init__.py").is_file() else []
    for module in _MODULES:
        text = _ENV.get_template(f"training/{module}.py.j2").render(**values)
        written.append(ctx.write_text(f"{TRAINING_PACKAGE}/{module}.py", text, kind="pipeline").path)
    written.append(ctx.write_text(TRAINING_TEST, _ENV.get_template("test_training.py.j2").render(**values),
                                  kind="test").path)
    written.append(ctx.write_text(TRAINING_CONFIG, "# Training configuration (validated by pipelines/training/config.py"
                                  "); data pinned by sha256\n" + yaml.safe_dump(config, sort_keys=False),
                                  kind="config").path)
    return {"status": "ok", "package": TRAINING_PACKAGE, "config": TRAINING_CONFIG, "tests": TRAINING_TEST,
            "files": written, "seed": config["seed"], "pinned": {
                role: {k: config[role][k] for k in ("path", "sha256", "rows")} for role in ("reference", "current")},
            "command": "python -m pipelines.training"}


@tool(parse_docstring=True)
def generate_training_pipeline(model_path: str, reference_path: str, current_path: str, label_column: str = "", *,
                               ctx: Ctx) -> str:
    """Generate the training pipeline (pipelines/training/ with its config pipelines/training.yaml and its test
    tests/test_training.py): the production estimator's class and parameters cloned, the data pinned by sha256,
    a fixed seed; fit on the reference plus two thirds of the labelled current batch, evaluate on the held-out
    third, write <model folder>-candidate/ and register it with its metrics. Run it with
    `python -m pipelines.training` (run_training_pipeline does, in the sandbox).

    Args:
        model_path: Workspace-relative production model folder (its joblib artifact is cloned).
        reference_path: Labelled reference data (CSV or Parquet).
        current_path: Labelled current batch (CSV or Parquet).
        label_column: Ground-truth column; empty to take it from the alignment or the model's metadata.
    """
    return json.dumps(generate_training(ctx, model_path=model_path, reference_path=reference_path,
                                        current_path=current_path, label_column=label_column))




def run_training(ctx: ToolContext, *, config_path: str = TRAINING_CONFIG) -> dict[str, Any]:
    """Run the generated pipeline in the sandbox, then score its candidate and the production model on the
    held-out rows through the model runner and compute the figures here: the pipeline's own figures must agree.
    Writes ``reports/remediation.json`` (the candidate's comparison with production, as the evaluation reads it)."""
    target = ctx.workspace / config_path
    if not target.is_file():
        raise DataError(f"the training config {config_path!r} does not exist", path=config_path,
                        fix="generate the training pipeline first (generate_training_pipeline)")
    config = yaml.safe_load(target.read_text()) or {}
    proc = run_sandboxed(["python", "-m", "pipelines.training", "--config", config_path], ctx.workspace, ctx.settings)
    result = last_json(proc.stdout) if proc.exit_code == 0 else None
    if result is None:
        why = {3: "the data is not the pinned version"}.get(proc.exit_code or 0, "it failed")
        raise ToolError(f"python -m pipelines.training exited {proc.exit_code} ({why}): {proc.stderr[-800:]}")
    folder = config["output"]["model_dir"]
    label, current = config["label_column"], config["current"]["path"]
    holdout = {"modulo": int(config["holdout"]["modulo"]), "remainder": int(config["holdout"]["remainder"])}
    models = {"candidate": locate_model(ctx.workspace, folder),
              "production": locate_model(ctx.workspace, Path(config["base_model"]).parent.as_posix())}
    scored = sandboxed.predict(ctx, models=models, data={"current": current},
                               jobs=[{"model": name, "data": "current", "rows": holdout} for name in models])
    frame = read_table(ctx.workspace, current)
    held = frame[(np.arange(len(frame)) % holdout["modulo"]) == holdout["remainder"]]
    host = {name: figures(outcome(scored.models[name], scored.get(name, "current"), held[label], path=current))
            for name in models}
    reported = {"candidate": result.get("metrics") or {}, "production": result.get("production_metrics") or {}}
    mismatched = [f"{who} {name}: pipeline {value}, host {host[who].get(name)}"
                  for who, values in reported.items() for name, value in values.items()
                  if name in host[who] and abs(float(host[who][name]) - float(value)) > _TOLERANCE]
    thresholds = read_json(ctx.workspace, ALIGNMENT_PATH).get("thresholds") or {}
    cand_outcome = outcome(scored.models["candidate"], scored.get("candidate", "current"), held[label], path=current)
    alerts = check_metrics(thresholds, cand_outcome, host["candidate"]) if thresholds.get("metrics") else []
    floor = config.get("min_precision")
    out = {"status": "ok" if not mismatched else "failed", "candidate_path": folder, "version": result.get("version"),
           "files": [ctx.record_file(ctx.workspace / folder / name, kind="model").path
                     for name in ("model.joblib", "model.yaml")], "kind": config.get("kind"),
           "trained_rows": result.get("trained_rows"), "holdout_rows": int(len(held)),
           "candidate": host["candidate"], "production": host["production"], "precision_floor": floor,
           "alerts": [{k: a.get(k) for k in ("name", "metric", "direction", "threshold", "value", "fired")}
                      for a in alerts],
           "pipeline": {"command": f"python -m pipelines.training --config {config_path}", "exit_code": proc.exit_code,
                        "seconds": round(proc.duration_s, 2), "model_sha256": result.get("model_sha256"),
                        "seed": result.get("seed"), "data": result.get("data"),
                        "registry_entry": result.get("registry_entry"), "metrics": result.get("metrics"),
                        "agrees_with_host": not mismatched, "mismatches": mismatched}}
    if floor is not None and "precision" in host["candidate"]:
        out["meets_floor"] = host["candidate"]["precision"] >= floor
    else:
        out["meets_floor"] = not any(a["fired"] for a in alerts)
    for rel in (TRAINING_METRICS, result.get("registry_entry"), "registry/index.json"):
        if rel and (ctx.workspace / rel).is_file():
            out["files"].append(ctx.record_file(ctx.workspace / rel, kind="report" if rel.startswith("reports")
                                                else "registry").path)
    ctx.write_text("reports/remediation.json", json.dumps(out, indent=2), kind="report")
    if mismatched:
        raise ToolError("the training pipeline's figures do not match the host's on the same rows: "
                        + "; ".join(mismatched))
    return out


@tool(parse_docstring=True)
def run_training_pipeline(config_path: str = TRAINING_CONFIG, *, ctx: Ctx) -> str:
    """Retrain a candidate by running the generated training pipeline (python -m pipelines.training) in the
    sandbox, so the candidate is reproducible from the repository alone; then score the candidate and the
    production model on the held-out rows and check the pipeline's figures against the host's. Writes
    <model folder>-candidate/, its registry entry and reports/remediation.json; evaluate it with
    evaluate_model(candidate_path=...).

    Args:
        config_path: Workspace-relative training config written by generate_training_pipeline.
    """
    return json.dumps(run_training(ctx, config_path=config_path))


def _ci_tests(workspace: Path) -> dict[str, Any]:
    """The counts of the local CI run's pytest step (it runs every test of the workspace, this one among them)."""
    import re

    run = read_json(workspace, "reports/ci-run.json")
    step = next((s for j in run.get("jobs") or [] for s in j.get("steps") or []
                 if "-m pytest" in str(s.get("run", "")) and s.get("status") in ("passed", "failed")), None)
    if step is None:
        return {}
    tail = str(step.get("stdout_tail") or "")
    count = {k: int(m.group(1)) if (m := re.search(rf"(\d+) {k}", tail)) else 0 for k in ("passed", "failed", "skipped")}
    return {**count, "errors": int(m.group(1)) if (m := re.search(r"(\d+) errors?", tail)) else 0,
            "where": f"the local CI run's step {step.get('name')!r}, exit code {step.get('exit_code')}"}


def training_check(workspace: Path, checks: dict[str, Any]) -> tuple[str, str, bool] | None:
    """The report's row: the pipeline exists, and its generated test re-ran it and matched the registered metrics."""
    if not (workspace / TRAINING_CONFIG).is_file():
        return None
    tests = checks.get("training_tests") or _ci_tests(workspace)
    run = read_json(workspace, TRAINING_METRICS)
    counts = f"{tests.get('passed')} passed, {tests.get('failed')} failed, {tests.get('skipped')} skipped" + (
        f" ({tests['where']})" if tests.get("where") else "")
    if not run:
        return ("Training pipeline", f"`{TRAINING_PACKAGE}` generated, not run in this mission (no retraining was "
                "needed); its tests: " + counts, tests.get("failed") == 0 and tests.get("errors") == 0)
    ok = (tests.get("failed") == 0 and tests.get("errors") == 0 and not tests.get("skipped")
          and (tests.get("passed") or 0) >= 2)
    metrics = ", ".join(f"{k} {v}" for k, v in (run.get("metrics") or {}).items())
    return ("Training pipeline", f"`python -m pipelines.training` retrained {run.get('version')} (seed {run.get('seed')}, "
            f"data pinned by sha256; held-out {metrics}); the generated test re-ran it: {counts}", ok)
