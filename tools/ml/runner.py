"""The model runner: the only code that loads a workspace model, run INSIDE the sandbox.

A workspace model is untrusted (unpickling runs code; an ONNX file is parsed by native code), so the host
never loads one: it starts this script under bubblewrap (``tools.ml.sandboxed``), passes one JSON request
(an operation, workspace-relative paths and parameters) as its argument, and reads one JSON answer from its
standard output. Answers carry figures only: predictions and scores as base64 arrays, a description of the
model, timings, ONNX or retrained-model bytes for the host to write. The host computes every metric.

This file imports nothing from the project (the sandbox mounts only the interpreter and the workspace) and is
one file on purpose, shipped whole as ``python -I -c <this source> <request>``: isolated mode keeps the workspace off the front of
``sys.path``; it is appended last so that pickles naming the workspace's own modules still load.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

_KINDS = {"anomaly", "binary", "multiclass", "regression"}
_KIND_ALIASES = {"anomaly_detector": "anomaly", "outlier": "anomaly", "outlier_detector": "anomaly",
                 "novelty": "anomaly", "binary_classifier": "binary", "multiclass_classifier": "multiclass",
                 "regressor": "regression"}
_ROOT = Path("/workspace")
"""The workspace as the runner sees it (its working directory, set in ``main``)."""


class Failure(Exception):
    """A request that cannot be served; ``kind`` says whose input is at fault (model or data)."""

    def __init__(self, kind: str, message: str, *, path: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.kind, self.path, self.fix = kind, path, fix

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": str(self), "path": self.path, "fix": self.fix}


# ---------------------------------------------------------------------------------------------- encoding

def encode(array: Any) -> dict[str, Any] | None:
    """A numeric array as ``{"dtype", "shape", "b64"}`` (little-endian), which the host decodes without pickle."""
    if array is None:
        return None
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    elif arr.dtype.kind in "iu":
        arr = arr.astype("<i8")
    else:
        arr = arr.astype("<f8")
    arr = np.ascontiguousarray(arr)
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def plain(value: Any) -> Any:
    """A label or parameter as a JSON value (numpy scalars unwrapped, anything else as its text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    return str(value)


# ---------------------------------------------------------------------------------------------- loading

def _load_artifact(path: str) -> tuple[Any, Any]:
    """(estimator, onnx session): exactly one is set."""
    target = _ROOT / path
    if not target.is_file():
        raise Failure("model", f"model file {path!r} does not exist", path=path,
                      fix="check the model path in the mission's inputs")
    if target.suffix == ".onnx":
        try:
            import onnxruntime as ort

            return None, ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... for a bad file
            raise Failure("model", f"ONNX model {path!r} cannot be loaded ({type(exc).__name__}: {exc})",
                          path=path, fix="re-export the model to ONNX, or provide the scikit-learn artifact") from None
    try:
        import joblib

        estimator = joblib.load(target)
    except Exception as exc:  # a corrupt pickle raises anything (UnpicklingError, EOFError, KeyError...)
        raise Failure("model", f"model file {path!r} cannot be loaded ({type(exc).__name__}: {str(exc)[:300]}); "
                      "it is corrupt or was saved by an incompatible library version", path=path,
                      fix="replace it with a model saved by the installed scikit-learn/joblib, or an ONNX export") from None
    if not callable(getattr(estimator, "predict", None)):
        raise Failure("model", f"{path!r} holds a {type(estimator).__name__}, which is not a model (no predict())",
                      path=path, fix="point the mission at a fitted estimator or Pipeline saved with joblib")
    return estimator, None


class Model:
    """A loaded model with what the host told about it (``model.yaml``) and what the artifact says."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.artifact = str(spec["artifact"])
        self.meta: dict[str, Any] = spec.get("meta") or {}
        self.estimator, self.session = _load_artifact(self.artifact)
        prediction = self.meta.get("prediction") or {}
        self.anomaly_label = prediction.get("anomaly_label", -1)
        names = getattr(self.estimator, "feature_names_in_", None)
        self.frame_input = names is not None  # fitted on a DataFrame: give it one (Pipelines, string columns)
        declared = [str(f) for f in self.meta.get("features") or []]
        if declared:
            self.features, self.feature_source = declared, "model.yaml"
        elif names is not None:
            self.features, self.feature_source = [str(n) for n in names], "feature_names_in_"
        elif self.session is not None and len(self.session.get_inputs()) > 1:
            self.features, self.feature_source = [i.name for i in self.session.get_inputs()], "onnx inputs"
        else:
            self.features, self.feature_source = [], "unknown"
        self.classes = self._classes()
        self.kind = self._kind(prediction.get("kind"))
        self.positive = self._positive(prediction.get("positive_label"))

    # -- what the artifact is

    def _classes(self) -> list[Any] | None:
        if self.estimator is not None:
            classes = getattr(self.estimator, "classes_", None)
            return [plain(c) for c in classes] if classes is not None else None
        import onnx

        graph = onnx.load(str(_ROOT / self.artifact), load_external_data=False).graph
        for node in graph.node:
            for attr in node.attribute:
                if attr.name == "classlabels_int64s" and attr.ints:
                    return [int(v) for v in attr.ints]
                if attr.name == "classlabels_strings" and attr.strings:
                    return [v.decode() for v in attr.strings]
        return None

    def _kind(self, declared: Any) -> str:
        if declared:
            kind = _KIND_ALIASES.get(str(declared).lower(), str(declared).lower())
            if kind == "classifier":
                return "multiclass" if self.classes and len(self.classes) > 2 else "binary"
            if kind in _KINDS:
                return kind
        if self.estimator is not None:
            from sklearn.base import is_classifier, is_outlier_detector, is_regressor

            est = self.estimator
            if is_outlier_detector(est):
                return "anomaly"
            if is_classifier(est) or self.classes is not None:
                return "multiclass" if self.classes and len(self.classes) > 2 else "binary"
            if is_regressor(est):
                return "regression"
            if hasattr(est, "score_samples") and hasattr(est, "decision_function"):
                return "anomaly"
            return "regression"
        outputs = self.session.get_outputs()
        if self.classes is not None or (len(outputs) >= 2 and len(outputs[1].shape or []) == 2
                                        and outputs[1].shape[1] not in (1, None)):
            return "multiclass" if self.classes and len(self.classes) > 2 else "binary"
        if len(outputs) >= 2:
            return "anomaly"  # label + score, one column each: skl2onnx's outlier detectors
        return "regression"

    def _positive(self, declared: Any) -> Any:
        if self.kind != "binary" or not self.classes:
            return None
        if declared is not None:
            for c in self.classes:
                if c == declared or str(c) == str(declared):
                    return c
        for candidate in (1, True, "1", "yes", "true", "positive"):
            for c in self.classes:
                if c == candidate and type(c) is type(candidate):
                    return c
        return self.classes[-1]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "artifact": self.artifact, "format": "onnx" if self.session is not None else
            ("joblib" if self.artifact.endswith(".joblib") else "pickle"),
            "kind": self.kind, "classes": self.classes, "positive_label": plain(self.positive),
            "features": self.features, "feature_source": self.feature_source, "input": "frame" if self.frame_input
            else "matrix",
        }
        est = self.estimator
        if est is not None:
            from sklearn.base import is_classifier, is_outlier_detector, is_regressor

            out.update(estimator=type(est).__name__, module=type(est).__module__, is_classifier=bool(is_classifier(est)),
                       is_regressor=bool(is_regressor(est)), is_outlier_detector=bool(is_outlier_detector(est)),
                       methods=[m for m in ("predict_proba", "decision_function", "score_samples")
                                if callable(getattr(est, m, None))],
                       n_features_in=plain(getattr(est, "n_features_in_", None)))
            params = est.get_params() if hasattr(est, "get_params") else {}
            out["params"] = {k: plain(v) for k, v in params.items()
                             if isinstance(v, (int, float, str, bool, type(None), np.generic))}
            out["seeds"] = {k: plain(v) for k, v in params.items()
                            if k.endswith("random_state") and isinstance(v, (int, type(None), np.integer))}
            if hasattr(est, "offset_"):
                out["threshold"] = float(np.asarray(est.offset_))
            steps = getattr(est, "steps", None)
            if steps:
                out["steps"] = [{"name": str(n), "estimator": type(s).__name__} for n, s in steps]
        else:
            out["estimator"] = "onnx"
            out["onnx"] = {"inputs": [{"name": i.name, "type": i.type, "shape": [plain(d) for d in i.shape or []]}
                                      for i in self.session.get_inputs()],
                           "outputs": [{"name": o.name, "type": o.type, "shape": [plain(d) for d in o.shape or []]}
                                       for o in self.session.get_outputs()]}
        return out

    # -- scoring

    def inputs(self, frame: Any, path: str) -> Any:
        """The model's input built from ``frame``: a DataFrame, a float matrix, or ONNX feeds."""
        if not self.features:
            raise Failure("model", f"{self.artifact!r} does not record its feature columns and model.yaml lists none",
                          path=self.artifact, fix="add 'features: [...]' (the input columns, in order) to model.yaml")
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise Failure("data", f"{path!r} lacks model features {missing[:10]} ({len(missing)} missing)", path=path,
                          fix=f"provide data with the model's feature columns ({', '.join(self.features[:8])}"
                              f"{', ...' if len(self.features) > 8 else ''})")
        x = frame[self.features]
        missing_cells = x.isna().sum()
        if missing_cells.any() and not self._takes_missing():
            columns = {str(c): int(n) for c, n in missing_cells.items() if n}
            raise Failure("data", f"{path!r} has missing values in model features "
                          f"{dict(list(columns.items())[:10])} (column: empty cells)", path=path,
                          fix="fill or drop the rows with missing values; if the model handles them (an imputer, "
                              "a gradient-boosting model), say so with 'missing_values: allowed' in model.yaml")
        if self.session is not None and len(self.session.get_inputs()) > 1:
            return {i.name: _column_feed(x[i.name], i.type, path) for i in self.session.get_inputs()}
        if self.frame_input:
            return x
        return _numeric_matrix(x, path)

    def _takes_missing(self) -> bool:
        """Whether empty cells are expected: declared in model.yaml, or an imputer / NaN-aware estimator inside."""
        if str(self.meta.get("missing_values", "")).lower() in ("allowed", "true", "yes"):
            return True
        seen, stack = 0, [self.estimator]
        while stack and seen < 200:
            seen += 1
            node = stack.pop()
            name = type(node).__name__
            if name.endswith("Imputer") or name.startswith("HistGradientBoosting"):
                return True
            stack += [s for _, s in getattr(node, "steps", None) or []]
            stack += [t for _, t, _ in getattr(node, "transformers_", None) or []]
        return False

    def score(self, frame: Any, path: str) -> dict[str, Any]:
        """Predictions of one dataset: ``pred`` (class index, value or anomaly flag), ``proba``, ``score``."""
        x = self.inputs(frame, path)
        try:
            if self.session is not None:
                return self._score_onnx(x)
            return self._score_sklearn(x)
        except Failure:
            raise
        except Exception as exc:  # the estimator's own ValueError/TypeError on input it cannot take
            nan_columns = [c for c in self.features if frame[c].isna().any()]
            if nan_columns:
                raise Failure("data", f"{path!r} has missing values in {nan_columns[:10]} and the model cannot take "
                              f"them ({type(exc).__name__}: {str(exc)[:200]})", path=path,
                              fix="fill or drop the rows with missing values, or use a model with an imputer") from None
            if "convert" in str(exc) or "could not" in str(exc):
                raise Failure("data", f"{path!r} has values the model cannot read ({type(exc).__name__}: "
                              f"{str(exc)[:200]})", path=path, fix="fix the column types of the data") from None
            raise Failure("model", f"{self.artifact!r} failed to predict on {path!r} ({type(exc).__name__}: "
                          f"{str(exc)[:300]})", path=self.artifact,
                          fix="check that the model matches the data and the installed library versions") from None

    def _score_sklearn(self, x: Any) -> dict[str, Any]:
        est = self.estimator
        raw = np.asarray(est.predict(x)).reshape(-1)
        if self.kind == "anomaly":
            flag = (raw == self.anomaly_label).astype(np.int8)
            if callable(getattr(est, "decision_function", None)):
                # decision_function (score - threshold) is what the ONNX export outputs too.
                score = -np.asarray(est.decision_function(x), dtype=np.float64).reshape(-1)
            elif callable(getattr(est, "score_samples", None)):
                score = -np.asarray(est.score_samples(x), dtype=np.float64).reshape(-1)
            else:
                score = None
            return {"pred": flag, "proba": None, "score": score}
        if self.kind == "regression":
            return {"pred": raw.astype(np.float64), "proba": None, "score": None}
        proba = np.asarray(est.predict_proba(x), dtype=np.float64) if callable(getattr(est, "predict_proba", None)) \
            else None
        score = None
        if self.kind == "binary":
            pos = self.classes.index(self.positive)
            if proba is not None:
                score = proba[:, pos]
            elif callable(getattr(est, "decision_function", None)):
                decision = np.asarray(est.decision_function(x), dtype=np.float64).reshape(-1)
                score = decision if pos == len(self.classes) - 1 else -decision
        return {"pred": self._index(raw), "proba": proba, "score": score}

    def _score_onnx(self, feeds: Any) -> dict[str, Any]:
        if not isinstance(feeds, dict):
            feeds = {self.session.get_inputs()[0].name: np.asarray(feeds, dtype=np.float32)}
        outputs = self.session.run(None, feeds)
        first = np.asarray(outputs[0]).reshape(-1)
        if self.kind == "anomaly":
            score = -np.asarray(outputs[1], dtype=np.float64).reshape(-1) if len(outputs) > 1 else None
            return {"pred": (first == self.anomaly_label).astype(np.int8), "proba": None, "score": score}
        if self.kind == "regression":
            return {"pred": first.astype(np.float64), "proba": None, "score": None}
        proba = None
        if len(outputs) > 1 and not isinstance(outputs[1], list):  # a ZipMap output is a list of dicts: skip it
            proba = np.asarray(outputs[1], dtype=np.float64)
            proba = proba.reshape(len(first), -1)
        score = None
        if self.kind == "binary" and proba is not None and self.classes:
            score = proba[:, self.classes.index(self.positive)]
        elif self.kind == "binary" and proba is not None:
            score = proba[:, -1]
        if self.classes is None:
            self.classes = sorted({plain(v) for v in first}, key=str)
        return {"pred": self._index(first), "proba": proba, "score": score}

    def _index(self, labels: np.ndarray) -> np.ndarray:
        """Class labels as indices into ``classes`` (-1 for a label outside them)."""
        lookup = {_key(c): i for i, c in enumerate(self.classes or [])}
        return np.array([lookup.get(_key(plain(v)), -1) for v in labels], dtype=np.int64)


def _key(value: Any) -> Any:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", float(value))
    return ("s", str(value))


def _numeric_matrix(x: Any, path: str) -> np.ndarray:
    import pandas as pd

    for name in x.columns:
        if not pd.api.types.is_numeric_dtype(x[name]) and not pd.api.types.is_bool_dtype(x[name]):
            bad = pd.to_numeric(x[name], errors="coerce").isna() & x[name].notna()
            if bad.any():
                example = str(x[name][bad].iloc[0])[:40]
                raise Failure("data", f"{path!r} column {name!r} holds non-numeric values (e.g. {example!r}, "
                              f"{int(bad.sum())} rows) but the model takes numbers", path=path,
                              fix=f"clean column {name!r} so that every value is a number")
    return x.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


def _column_feed(column: Any, onnx_type: str, path: str) -> np.ndarray:
    if "string" in onnx_type:
        return column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    if "int64" in onnx_type:
        return column.to_numpy(dtype=np.int64).reshape(-1, 1)
    return _numeric_matrix(column.to_frame(), path).astype(np.float32).reshape(-1, 1)


# ---------------------------------------------------------------------------------------------- data

_FRAMES: dict[str, Any] = {}


def read_frame(path: str) -> Any:
    """A CSV or Parquet file of the workspace as a DataFrame (read once per request)."""
    if path in _FRAMES:
        return _FRAMES[path]
    import pandas as pd

    target = _ROOT / path
    if not target.is_file():
        raise Failure("data", f"dataset {path!r} does not exist", path=path, fix="check the data path")
    try:
        frame = pd.read_parquet(target) if target.suffix in (".parquet", ".pq") else pd.read_csv(target)
    except Exception as exc:  # ParserError, EmptyDataError, ArrowInvalid, UnicodeDecodeError...
        raise Failure("data", f"dataset {path!r} cannot be read ({type(exc).__name__}: {str(exc)[:200]})", path=path,
                      fix="provide a well-formed CSV or Parquet file") from None
    if frame.empty:
        raise Failure("data", f"dataset {path!r} has no rows", path=path, fix="provide a file with data rows")
    _FRAMES[path] = frame
    return frame


def _rows(frame: Any, rows: dict[str, int] | None, *, keep: bool = True) -> Any:
    if not rows:
        return frame
    mask = (np.arange(len(frame)) % int(rows["modulo"])) == int(rows["remainder"])
    return frame[mask if keep else ~mask]


# ---------------------------------------------------------------------------------------------- operations

def op_describe(request: dict[str, Any]) -> dict[str, Any]:
    models = {name: Model(spec).describe() for name, spec in request["models"].items()}
    return {"models": models, "workspace_code": _workspace_modules()}


def _workspace_modules() -> list[str]:
    """Modules imported from the workspace (a pickle naming the workspace's own classes): the description then
    depends on that code too, not only on the model's bytes."""
    root = f"{_ROOT}{os.sep}"
    return sorted(name for name, module in list(sys.modules.items())
                  if str(getattr(module, "__file__", None) or "").startswith(root))


def op_predict(request: dict[str, Any]) -> dict[str, Any]:
    """Every job ``{model, data, rows?}`` scored; one sandbox start for all the host needs.

    A model whose spec says ``optional`` (a retrained candidate beside the production model) that fails
    to load or score is reported under ``failed`` instead of failing the whole request.
    """
    specs = request["models"]
    models: dict[str, Model] = {}
    failed: dict[str, dict[str, str]] = {}
    for name, spec in specs.items():
        try:
            models[name] = Model(spec)
        except Failure as exc:
            if not spec.get("optional"):
                raise
            failed[name] = exc.as_dict()
    results = []
    for job in request.get("jobs") or []:
        if job["model"] in failed:
            continue
        model, path = models[job["model"]], request["datasets"][job["data"]]
        frame = _rows(read_frame(path), job.get("rows"))
        try:
            scored = model.score(frame, path)
        except Failure as exc:
            if not specs[job["model"]].get("optional"):
                raise
            failed[job["model"]] = exc.as_dict()
            continue
        results.append({"model": job["model"], "data": job["data"], "rows": int(len(frame)),
                        **{k: encode(v) for k, v in scored.items()}})
    results = [r for r in results if r["model"] not in failed]
    return {"models": {name: m.describe() for name, m in models.items() if name not in failed},
            "failed": failed, "results": results}


def op_benchmark(request: dict[str, Any]) -> dict[str, Any]:
    """Time ``predict`` on the data tiled to ``rows`` rows (model scoring only, no I/O)."""
    import pandas as pd

    model = Model(request["model"])
    path = request["data"]
    frame = read_frame(path)
    rows = int(request["rows"])
    tiled = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows]
    x = model.inputs(tiled, path)
    started = time.perf_counter()
    if model.session is not None:
        model._score_onnx(x)
    else:
        model.estimator.predict(x)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 4), "rows_per_second": round(rows / max(seconds, 1e-9), 1)}


def _opsets() -> dict[str, int]:
    import onnx

    return {"": min(onnx.defs.onnx_opset_version(), 18), "ai.onnx.ml": 3}


def _initial_types(model: Model, x: Any) -> list[Any]:
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    if not model.frame_input or all(x[c].dtype.kind in "fiub" for c in x.columns) and \
            type(model.estimator).__name__ != "Pipeline":
        return [("input", FloatTensorType([None, len(model.features)]))]
    types = []
    for name in model.features:
        kind = x[name].dtype.kind
        types.append((name, StringTensorType([None, 1]) if kind in "OSU" else
                      Int64TensorType([None, 1]) if kind in "iu" else FloatTensorType([None, 1])))
    return types


def _bool_flags_as_ints() -> None:
    """skl2onnx 1.20 passes a HistGradientBoosting node's ``missing_go_to_left`` as a bool into an ONNX ints
    attribute, which protobuf 5+ refuses ("Expected an int, got a boolean"): every such model failed to export.
    Its node builder gets the flag as the 0/1 the attribute holds."""
    from skl2onnx.common import tree_ensemble

    add_node = tree_ensemble.add_node
    if getattr(add_node, "casts_flags", False):
        return

    def cast(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return add_node(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    cast.casts_flags = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = cast


def op_export_onnx(request: dict[str, Any]) -> dict[str, Any]:
    """Convert with skl2onnx and compare the two on real rows; the ONNX bytes go back to the host to write."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn

    _bool_flags_as_ints()

    model = Model(request["model"])
    if model.estimator is None:
        raise Failure("model", f"{model.artifact!r} is already ONNX", path=model.artifact,
                      fix="export the joblib artifact instead")
    path = request["data"]
    frame = read_frame(path).head(int(request.get("rows", 5000)))
    x = model.inputs(frame, path)
    x_frame = frame[model.features]
    est = model.estimator
    options = {id(est): {"zipmap": False}} if callable(getattr(est, "predict_proba", None)) else None
    initial = _initial_types(model, x_frame)
    try:
        onx = convert_sklearn(est, initial_types=initial, target_opset=_opsets(), options=options)
    except Exception as exc:  # skl2onnx raises plain RuntimeError/NotImplementedError for unsupported models
        raise Failure("convert", f"skl2onnx cannot convert {type(est).__name__}: {str(exc)[:300]}",
                      path=model.artifact, fix="serve the joblib artifact from a trusted image") from None
    data = onx.SerializeToString()
    exported = Model.__new__(Model)
    exported.__dict__.update(model.__dict__)
    exported.estimator, exported.session = None, ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {i.name: _column_feed(x_frame[i.name], i.type, path) for i in exported.session.get_inputs()} \
        if len(initial) > 1 else np.asarray(x, dtype=np.float32)
    original, converted = model._score_sklearn(x), exported._score_onnx(feeds)
    return {"onnx_b64": base64.b64encode(data).decode(), "opsets": _opsets(), "rows": int(len(frame)),
            "inputs": [{"name": n, "type": type(t).__name__} for n, t in initial],
            "original": {k: encode(v) for k, v in original.items()},
            "converted": {k: encode(v) for k, v in converted.items()}, "model": model.describe()}


def _calibrate(scores: np.ndarray, y: np.ndarray, *, min_precision: float | None) -> float:
    """Anomaly threshold on ``score_samples``: best F0.5, preferring thresholds meeting ``min_precision``."""
    best, best_key = float(np.quantile(scores, 0.1)), (-1, -1.0)
    for t in np.quantile(scores, np.linspace(0.01, 0.3, 59)):
        pred = scores < t
        tp = int((pred & (y == 1)).sum())
        if tp == 0:
            continue
        p, r = tp / pred.sum(), tp / max((y == 1).sum(), 1)
        f = 1.25 * p * r / (0.25 * p + r)
        key = (int(min_precision is None or p >= min_precision), f)
        if key > best_key:
            best, best_key = float(t), key
    return best


def op_retrain(request: dict[str, Any]) -> dict[str, Any]:
    """Fit a clone of the model on reference + the current rows not held out; score both on the held-out rows."""
    import joblib
    import pandas as pd
    from sklearn.base import clone

    model = Model(request["model"])
    if model.estimator is None:
        raise Failure("model", f"{model.artifact!r} is ONNX only: retraining needs the scikit-learn estimator",
                      path=model.artifact, fix="provide the joblib artifact beside the ONNX file")
    label = request["label_column"]
    ref_path, cur_path = request["reference"], request["current"]
    ref, cur = read_frame(ref_path), read_frame(cur_path)
    for path, frame in ((ref_path, ref), (cur_path, cur)):
        if label not in frame.columns:
            raise Failure("data", f"{path!r} has no {label!r} column: retraining needs labels", path=path,
                          fix=f"add the ground-truth column {label!r} to the data")
    holdout = request["holdout"]
    train = pd.concat([ref, _rows(cur, holdout, keep=False)], ignore_index=True)
    x = model.inputs(train, f"{ref_path} + {cur_path}")
    y = train[label].to_numpy()
    estimator = clone(model.estimator)
    if model.kind == "anomaly":
        truth = y.astype(int)
        estimator.fit(x[truth == 0])  # as the original: fitted on normal traffic, labels only calibrate
        if not hasattr(estimator, "offset_"):
            raise Failure("model", f"{type(estimator).__name__} has no offset_ to recalibrate", path=model.artifact,
                          fix="retrain this detector by hand")
        estimator.offset_ = _calibrate(estimator.score_samples(x), truth, min_precision=request.get("min_precision"))
    else:
        estimator.fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    candidate = Model.__new__(Model)
    candidate.__dict__.update(model.__dict__)
    candidate.estimator = estimator
    held = _rows(cur, holdout)
    out = {"model_b64": base64.b64encode(buffer.getvalue()).decode(), "trained_rows": int(len(train)),
           "holdout_rows": int(len(held)), "random_state": plain(estimator.get_params().get("random_state")),
           "model": model.describe(),
           "candidate": {k: encode(v) for k, v in candidate.score(held, cur_path).items()},
           "production": {k: encode(v) for k, v in model.score(held, cur_path).items()}}
    if hasattr(estimator, "offset_"):
        out["threshold"] = float(np.asarray(estimator.offset_))
    return out


def op_shadow(request: dict[str, Any]) -> dict[str, Any]:
    """Score the same rows with each model (production, candidate), timing each: the whole batch in one call,
    and one call per row on the first ``single_rows`` rows (what one request costs). A first call warms up."""
    path = request["data"]
    frame = _rows(read_frame(path), request.get("rows"))
    single = min(int(request.get("single_rows", 100)), len(frame))
    results = {}
    for name, spec in request["models"].items():
        model = Model(spec)
        model.score(frame.iloc[:1], path)
        started = time.perf_counter()
        scored = model.score(frame, path)
        batch_seconds = time.perf_counter() - started
        times = []
        for i in range(single):
            started = time.perf_counter()
            model.score(frame.iloc[i:i + 1], path)
            times.append((time.perf_counter() - started) * 1000)
        results[name] = {"model": model.describe(), "batch_seconds": round(batch_seconds, 6),
                         "single_row_ms": encode(np.array(times, dtype=np.float64)),
                         **{k: encode(v) for k, v in scored.items()}}
    return {"rows": int(len(frame)), "results": results}


OPERATIONS = {"describe": op_describe, "predict": op_predict, "benchmark": op_benchmark,
              "export_onnx": op_export_onnx, "retrain": op_retrain, "shadow": op_shadow}


def main(argv: list[str]) -> int:
    global _ROOT
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # whatever the model prints goes to stderr: stdout carries the answer alone
    try:
        request = json.loads(argv[1])
        _ROOT = Path.cwd()  # the workspace: /workspace in the sandbox
        sys.path.append(str(_ROOT))  # last: workspace modules can back a pickle, never shadow a library
        answer = {"ok": True, **OPERATIONS[request["op"]](request)}
    except Failure as exc:
        answer = {"ok": False, "error": exc.as_dict()}
    except MemoryError:
        answer = {"ok": False, "error": {"kind": "limit", "message": "the model runner ran out of memory "
                                         "(shell_memory_mb)", "path": "", "fix": ""}}
    except Exception as exc:  # the runner's own bug, or a model doing something unexpected: say which
        answer = {"ok": False, "error": {"kind": "internal", "message": f"{type(exc).__name__}: {str(exc)[:500]}",
                                         "path": "", "fix": "", "trace": traceback.format_exc()[-2000:]}}
    with os.fdopen(answer_fd, "w") as out:
        json.dump(answer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
