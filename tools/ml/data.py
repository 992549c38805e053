"""Datasets in the workspace: reading, profiling, fingerprinting, and locating a mission's inputs."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from langchain_core.tools import tool

from tools.context import Ctx
from tools.ml import sandboxed
from tools.ml.errors import DataError, check_workspace
from tools.ml.model import file_sha256, inner_model
from tools.workspace import resolve_in_workspace

__all__ = [
    "DataError", "read_table", "read_json", "profile_frame", "fingerprint", "locate", "load_config", "batch_files",
    "DATA_SUFFIXES", "BATCHES_DIR",
    "profile_dataset", "fingerprint_dataset", "inspect_model", "locate_inputs",
]

_SEGMENT_NAMES = ("segment", "site", "region", "group", "cohort", "country", "channel")
_LABEL_NAMES = ("is_anomaly", "label", "target", "y", "is_fraud", "class")


def read_table(workspace: Path, path: str) -> pd.DataFrame:
    """Read a CSV or Parquet file of the workspace; raises :class:`DataError` naming the file and the fix."""
    check_workspace(workspace)
    if not path:
        raise DataError("no dataset path given", path="data/", fix="name the data file in the mission's inputs")
    target = resolve_in_workspace(workspace, path)
    if not target.is_file():
        what = "is a folder, not a file" if target.is_dir() else "does not exist in the workspace"
        raise DataError(f"dataset {path!r} {what}", path=path,
                        fix="check the data path in the mission's inputs or the pipeline config")
    if target.stat().st_size == 0:
        raise DataError(f"dataset {path!r} is empty (0 bytes)", path=path, fix="provide the data rows in that file")
    try:
        frame = pd.read_parquet(target) if target.suffix in (".parquet", ".pq") else pd.read_csv(target)
    except ImportError as exc:
        raise DataError(f"dataset {path!r} is Parquet and no Parquet engine is installed ({exc})", path=path,
                        fix="provide it as CSV, or have the operator install pyarrow") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(f"dataset {path!r} cannot be parsed: {str(exc)[:300]}", path=path,
                        fix="provide a well-formed CSV (comma-separated, header line) or Parquet file") from None
    if frame.empty:
        raise DataError(f"dataset {path!r} has a header but no rows", path=path, fix="provide the data rows in that file")
    return frame


def profile_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """Schema, types, missing values and ranges of every column."""
    columns = []
    for name in frame.columns:
        col = frame[name]
        entry: dict[str, Any] = {"name": str(name), "dtype": str(col.dtype), "missing": int(col.isna().sum()),
                                 "missing_pct": round(float(col.isna().mean()) * 100, 3),
                                 "distinct": int(col.nunique(dropna=True))}
        if pd.api.types.is_numeric_dtype(col):
            values = col.dropna().to_numpy(dtype=float)
            if values.size:
                entry.update(min=float(values.min()), max=float(values.max()), mean=round(float(values.mean()), 6),
                             std=round(float(values.std()), 6))
        else:
            entry["top"] = [str(v) for v in col.value_counts().head(5).index]
        columns.append(entry)
    return {"rows": int(len(frame)), "n_columns": int(frame.shape[1]), "columns": columns}


def fingerprint(workspace: Path, path: str) -> dict[str, Any]:
    """Pin a dataset version: sha256 over the file's bytes, row and column counts."""
    target = resolve_in_workspace(workspace, path)
    frame = read_table(workspace, path)
    return {"path": path, "sha256": file_sha256(target), "bytes": target.stat().st_size, "rows": int(len(frame)),
            "columns": [str(c) for c in frame.columns],
            "schema_sha256": hashlib.sha256(",".join(map(str, frame.columns)).encode()).hexdigest()}


def read_json(workspace: Path, path: str) -> dict[str, Any]:
    """A JSON report of the workspace as a mapping ({} when it has not been written yet)."""
    target = resolve_in_workspace(workspace, path)
    return json.loads(target.read_text()) if target.is_file() else {}


def load_config(workspace: Path, path: str = "pipelines/batch-scoring.yaml") -> dict[str, Any]:
    """The pipeline configuration as a mapping ({} when absent)."""
    target = resolve_in_workspace(workspace, path)
    if not target.is_file():
        return {}
    try:
        data = yaml.safe_load(target.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path!r} is not valid YAML: {exc}", path=path, fix="fix the YAML syntax of the config") from None
    if not isinstance(data, dict):
        raise DataError(f"{path!r} must be a mapping of settings", path=path,
                        fix="write the config as 'key: value' sections (model, input, reference, output)")
    return data


DATA_SUFFIXES = (".csv", ".parquet", ".pq")
BATCHES_DIR = "data/batches"
"""A folder of batches (one file per batch, ordered by name): each is checked, the last is the current one."""


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def batch_files(workspace: Path, path: str) -> list[str]:
    """The data files of a batch folder in order (by name, numbers compared as numbers); ``[path]`` for a file."""
    target = resolve_in_workspace(workspace, path)
    if not target.is_dir():
        return [path]
    files = sorted((p for p in target.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES),
                   key=lambda p: _natural(p.name))
    if not files:
        raise DataError(f"the batch folder {path!r} holds no CSV or Parquet file", path=path,
                        fix="put one data file per batch in that folder")
    return [p.relative_to(workspace.resolve()).as_posix() for p in files]


_REFERENCE_WORDS = ("reference", "train", "baseline", "history", "historical")
_CURRENT_WORDS = ("current", "batch", "score", "new", "holdout", "hold_out", "hold-out", "test", "eval", "valid",
                  "live", "prod", "latest", "recent", "inference", "serving")


def _first_data(workspace: Path, words: tuple[str, ...], *, named: list[str] | None = None,
                not_: str = "") -> str | None:
    """The first data file whose name holds one of ``words`` (in the words' order): among the files the mission
    names when it names some, else in data/."""
    if named is not None:
        data = [workspace / n for n in named]
    else:
        data = sorted(p for p in (workspace / "data").iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES) \
            if (workspace / "data").is_dir() else []
    for word in words:
        for file in data:
            path = file.relative_to(workspace).as_posix()
            if word in file.stem.lower() and path != not_:
                return path
    return None


def _named_data(workspace: Path, inputs: list[str]) -> list[str]:
    """The data files among the mission's inputs that exist in the workspace."""
    root, named = workspace.resolve(), []
    for item in inputs:
        path = item.strip().removeprefix("./")
        target = (workspace / path).resolve()
        if path.endswith(DATA_SUFFIXES) and target.is_relative_to(root) and target.is_file() and path not in named:
            named.append(path)
    return named


def _header(target: Path) -> list[str]:
    try:
        if target.suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(target).names)
        return list(pd.read_csv(target, nrows=0).columns)
    except (ImportError, OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return []


def _aligned_label(workspace: Path, header: list[str]) -> str | None:
    """The label column the alignment inferred, if it is a column of this data (the report may be anything)."""
    try:
        aligned = read_json(workspace, "reports/alignment.json")
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    label = aligned.get("label_column") if isinstance(aligned, dict) else None
    return label if isinstance(label, str) and label in header else None


def locate(workspace: Path, inputs: list[str] | None = None) -> dict[str, Any]:
    """Where the config, model and data of a mission are, from the config file or by looking around."""
    check_workspace(workspace)
    inputs = inputs or []
    config_path = next((i for i in inputs if i.endswith((".yaml", ".yml"))), "pipelines/batch-scoring.yaml")
    config = load_config(workspace, config_path)
    model_hint = next((i.rstrip("/") for i in inputs if i.startswith("models") or i.endswith((".onnx", ".joblib", ".pkl"))), None)
    model_path = model_hint or str((config.get("model") or {}).get("path") or "")
    if not model_path and (workspace / "models").is_dir():
        dirs = sorted(p for p in (workspace / "models").iterdir() if p.is_dir() and not p.name.endswith("-candidate"))
        model_path = dirs[0].relative_to(workspace).as_posix() if dirs else ""
    if model_path and (inner := inner_model(workspace / model_path)) is not None:
        model_path = inner.relative_to(workspace).as_posix()
    model_meta: dict[str, Any] = {}
    if model_path:
        folder = workspace / model_path
        meta_file = (folder if folder.is_dir() else folder.parent) / "model.yaml"
        try:
            model_meta = (yaml.safe_load(meta_file.read_text()) or {}) if meta_file.is_file() else {}
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            model_meta = {}
        model_meta = model_meta if isinstance(model_meta, dict) else {}
    section_in = config.get("input") or {}
    batches = batch_files(workspace, BATCHES_DIR) if (workspace / BATCHES_DIR).is_dir() and any(
        p.suffix in DATA_SUFFIXES for p in (workspace / BATCHES_DIR).iterdir()) else []
    named = _named_data(workspace, inputs)
    reference = str((config.get("reference") or {}).get("path")
                    or _first_data(workspace, _REFERENCE_WORDS, named=named) or "")
    current = str(section_in.get("path") or (batches[-1] if batches else "")
                  or _first_data(workspace, _CURRENT_WORDS, named=named, not_=reference) or "")
    others = [n for n in named if n not in (reference, current)]
    if len(others) == 1 and bool(reference) != bool(current):  # the one other file the mission names
        reference, current = (reference, others[0]) if reference else (others[0], current)
    reference = reference or _first_data(workspace, _REFERENCE_WORDS) or ""
    current = current or _first_data(workspace, _CURRENT_WORDS, not_=reference) or ""
    # The label: the config's, the model's metadata, a column named like one, or the one the alignment found
    # (the column of the reference data the model does not take as input, fitting its classes or values).
    label = section_in.get("label_column") or model_meta.get("label_column")
    segment = section_in.get("segment_column")
    header: list[str] = []
    for candidate in (current, reference):
        target = workspace / candidate if candidate else None
        if target is not None and target.is_file() and target.stat().st_size:
            header = _header(target)
            break
    label = label or next((c for c in header if c.lower() in _LABEL_NAMES), None)
    if not label and header:
        label = _aligned_label(workspace, header)
    # A column named like a segment is offered, not used: slicing by it, and a bias alert across it, are for
    # the columns the config names, the model marks sensitive, or the mission asks about.
    segment_candidates = [c for c in header if c.lower() in _SEGMENT_NAMES and c != segment]
    candidates = sorted(p for p in (workspace / "models").glob("*-candidate") if (p / "model.yaml").is_file()) \
        if (workspace / "models").is_dir() else []
    evaluation = workspace / "reports/evaluation.json"
    selected = None
    if evaluation.is_file():
        try:
            selected = json.loads(evaluation.read_text()).get("selected_model")
        except json.JSONDecodeError:
            selected = None
    return {
        "config_path": config_path if (workspace / config_path).is_file() else None,
        "candidate_path": candidates[0].relative_to(workspace).as_posix() if candidates else None,
        "selected_model": selected,
        "model_path": model_path or None,
        "reference_path": reference or None,
        "current_path": current or None,
        "label_column": label,
        "segment_column": segment,
        "segment_candidates": segment_candidates,
        "labelled": bool(label and label in header),
        "batches_path": BATCHES_DIR if batches else None,
        "batches": batches,
        "sensitive_features": list(model_meta.get("sensitive_features") or []),
        "expected_rows_per_night": config.get("expected_rows_per_night"),
        "schedule": config.get("schedule"),
    }


@tool(parse_docstring=True)
def locate_inputs(inputs: list[str], *, ctx: Ctx) -> str:
    """Find the mission's pipeline config, model folder, reference and current data (CSV or Parquet; with a
    data/batches/ folder the current data is its latest batch), label and segment columns (the segment is the
    config's; columns named like one are listed as candidates, not used), a retrained
    candidate model (models/*-candidate) and the model the last evaluation selected.

    Args:
        inputs: The mission's Inputs entries (e.g. ["models/anomaly-detector/", "pipelines/batch-scoring.yaml"]).
    """
    return json.dumps(locate(ctx.workspace, inputs))


@tool(parse_docstring=True)
def profile_dataset(path: str, *, ctx: Ctx) -> str:
    """Profile a dataset (CSV or Parquet): row count, and per column its type, missing values, distinct
    count and range.

    Args:
        path: Workspace-relative path of the data file, e.g. "data/reference.csv".
    """
    return json.dumps({"path": path, **profile_frame(read_table(ctx.workspace, path))})


@tool(parse_docstring=True)
def fingerprint_dataset(path: str, *, ctx: Ctx) -> str:
    """Pin a dataset version: sha256 of the file, size, row count and column list.

    Args:
        path: Workspace-relative path of the CSV or Parquet file.
    """
    return json.dumps(fingerprint(ctx.workspace, path))


@tool(parse_docstring=True)
def inspect_model(path: str, *, ctx: Ctx) -> str:
    """Describe a workspace model (loaded inside the sandbox): estimator, kind (binary, multiclass,
    regression, anomaly), classes, features, parameters, threshold and the artifact's sha256.

    Args:
        path: Workspace-relative model folder (with or without model.yaml) or artifact file.
    """
    info = sandboxed.describe(ctx, path)
    out = info.public()
    out["sha256"] = file_sha256(ctx.workspace / info.artifact)
    for key in ("params", "threshold", "steps", "onnx", "is_classifier", "is_regressor", "is_outlier_detector",
                "methods", "input"):
        if key in info.description:
            out[key] = info.description[key]
    return json.dumps(out)


def last_json(text: str) -> dict[str, Any] | None:
    """The last line of a command's output that is a JSON object (what a sandboxed script answers), or None."""
    for line in reversed(text.strip().splitlines()):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return None
