"""The demo workspace: an anomaly detector, labelled reference and current data, and a batch-scoring config.

Built offline from scikit-learn's bundled breast-cancer data (malignant rows are the anomalies). The rows
are resampled with a little per-class jitter so that both files are large enough for stable drift
statistics. The features whose distribution is shifted in the current batch are returned to the caller
and never written into the workspace, so no agent can read the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import IsolationForest

__all__ = ["DemoInfo", "build_demo_workspace", "LABEL_COLUMN", "SEGMENT_COLUMN", "MODEL_DIR"]

LABEL_COLUMN = "is_anomaly"
SEGMENT_COLUMN = "site"
MODEL_DIR = "models/anomaly-detector"
_SITES = ("north", "south", "east")


@dataclass
class DemoInfo:
    """What the demo generator built, including the answer the agents must find on their own."""

    workspace: Path
    injected_shift: list[str]
    """Features whose distribution was shifted in ``data/current.csv`` (never written to the workspace)."""
    features: list[str]
    reference_rows: int
    current_rows: int
    threshold: float
    """Calibrated score threshold: ``score_samples(x) < threshold`` means anomaly."""
    segment_column: str | None = None
    files: list[str] = field(default_factory=list)


def _snake(name: str) -> str:
    return name.strip().replace(" ", "_").lower()


def _resample(x: np.ndarray, n: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Draw ``n`` rows with replacement and add Gaussian jitter scaled to each feature's spread."""
    idx = rng.integers(0, len(x), size=n)
    scale = x.std(axis=0, ddof=0) * jitter
    out = x[idx] + rng.normal(0.0, 1.0, size=(n, x.shape[1])) * scale
    return np.maximum(out, 0.0)  # every breast-cancer feature is a non-negative measurement


def _sample(normal: np.ndarray, anomal: np.ndarray, n: int, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_anom = int(round(n * rate))
    x = np.vstack([_resample(normal, n - n_anom, rng, 0.08), _resample(anomal, n_anom, rng, 0.08)])
    y = np.r_[np.zeros(n - n_anom, dtype=int), np.ones(n_anom, dtype=int)]
    order = rng.permutation(n)
    return x[order], y[order]


def _calibrate(scores: np.ndarray, y: np.ndarray) -> float:
    """The score threshold maximising F0.5 on labelled reference data (anomaly when score < threshold)."""
    best_t, best_f1 = float(np.quantile(scores, 0.1)), -1.0
    for t in np.quantile(scores, np.linspace(0.02, 0.3, 57)):
        pred = scores < t
        tp = int((pred & (y == 1)).sum())
        if tp == 0:
            continue
        precision, recall = tp / pred.sum(), tp / (y == 1).sum()
        f1 = 1.25 * precision * recall / (0.25 * precision + recall)  # F0.5: alerts must be trustworthy
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t


def build_demo_workspace(
    path: Path,
    *,
    shift: bool = True,
    segment: bool = False,
    seed: int = 7,
    reference_rows: int = 5000,
    current_rows: int = 6000,
    anomaly_rate: float = 0.1,
    n_shifted: int = 3,
    shift_sigmas: float = 3.0,
    expected_rows_per_night: int = 5_000_000,
) -> DemoInfo:
    """Write the demo workspace under ``path`` and return what was built (with the injected shift)."""
    rng = np.random.default_rng(seed)
    raw = load_breast_cancer()
    features = [_snake(n) for n in raw.feature_names]
    is_anom = raw.target == 0  # malignant
    normal, anomal = raw.data[~is_anom], raw.data[is_anom]

    x_ref, y_ref = _sample(normal, anomal, reference_rows, anomaly_rate, rng)
    x_cur, y_cur = _sample(normal, anomal, current_rows, anomaly_rate, rng)

    model = IsolationForest(n_estimators=100, max_samples=256, random_state=seed)
    model.fit(x_ref[y_ref == 0])  # trained on normal traffic
    # Calibrated on a separate labelled sample, so the reference baseline is not flattered by the threshold.
    x_cal, y_cal = _sample(normal, anomal, 10_000, anomaly_rate, rng)
    threshold = _calibrate(model.score_samples(x_cal), y_cal)
    # IsolationForest.predict is -1 where score_samples - offset_ < 0: the calibrated threshold is the offset.
    model.offset_ = threshold

    injected: list[str] = []
    if shift:
        picks = rng.choice(len(features), size=n_shifted, replace=False)
        for j in sorted(int(p) for p in picks):
            x_cur[:, j] = x_cur[:, j] + shift_sigmas * x_ref[:, j].std()
            injected.append(features[j])

    path.mkdir(parents=True, exist_ok=True)
    ref = pd.DataFrame(x_ref, columns=features).round(6)
    cur = pd.DataFrame(x_cur, columns=features).round(6)
    ref.insert(0, "record_id", np.arange(len(ref)))
    cur.insert(0, "record_id", np.arange(len(cur)) + 1_000_000)
    if segment:
        ref[SEGMENT_COLUMN] = rng.choice(_SITES, size=len(ref))
        cur[SEGMENT_COLUMN] = rng.choice(_SITES, size=len(cur))
    ref[LABEL_COLUMN] = y_ref
    cur[LABEL_COLUMN] = y_cur

    files = _write_files(path, ref, cur, model, features, threshold, segment, seed, expected_rows_per_night)
    return DemoInfo(workspace=path, injected_shift=injected, features=features, reference_rows=len(ref),
                    current_rows=len(cur), threshold=threshold,
                    segment_column=SEGMENT_COLUMN if segment else None, files=files)


def _write_files(path: Path, ref: pd.DataFrame, cur: pd.DataFrame, model: IsolationForest, features: list[str],
                 threshold: float, segment: bool, seed: int, expected_rows: int) -> list[str]:
    (path / "data").mkdir(exist_ok=True)
    (path / MODEL_DIR).mkdir(parents=True, exist_ok=True)
    (path / "pipelines").mkdir(exist_ok=True)
    ref.to_csv(path / "data/reference.csv", index=False)
    cur.to_csv(path / "data/current.csv", index=False)
    joblib.dump(model, path / MODEL_DIR / "model.joblib")
    meta = {
        "name": "anomaly-detector",
        "version": "1.0.0",
        "framework": "scikit-learn",
        "estimator": "IsolationForest",
        "artifact": "model.joblib",
        "features": features,
        "label_column": LABEL_COLUMN,
        "id_column": "record_id",
        "prediction": {"kind": "anomaly", "anomaly_label": -1, "score": "score_samples",
                       "threshold": round(float(threshold), 8),
                       "note": "predict() returns -1 for anomalies; offset_ holds the calibrated threshold"},
        "training": {"data": "data/reference.csv", "random_state": seed},
    }
    (path / MODEL_DIR / "model.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    config = {
        "name": "anomaly-batch-scoring",
        "model": {"path": f"{MODEL_DIR}/model.joblib", "metadata": f"{MODEL_DIR}/model.yaml"},
        "input": {"path": "data/current.csv", "id_column": "record_id", "label_column": LABEL_COLUMN},
        "reference": {"path": "data/reference.csv"},
        "output": {"path": "outputs/scores.csv", "metrics_path": "outputs/metrics.json"},
        "chunk_size": 50_000,
        "schedule": {"cron": "0 1 * * *", "timezone": "UTC", "window_hours": 2},
        "expected_rows_per_night": expected_rows,
    }
    if segment:
        config["input"]["segment_column"] = SEGMENT_COLUMN
    (path / "pipelines/batch-scoring.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (path / "README.md").write_text(
        "# Anomaly detection: batch scoring\n\n"
        "- `models/anomaly-detector/`: IsolationForest detector (joblib) and its metadata (`model.yaml`).\n"
        "- `data/reference.csv`: labelled reference data the model was trained and calibrated on.\n"
        "- `data/current.csv`: the latest labelled batch to score and monitor.\n"
        "- `pipelines/batch-scoring.yaml`: batch-scoring configuration (paths, chunk size, schedule, volume).\n"
    )
    return ["README.md", "data/reference.csv", "data/current.csv", f"{MODEL_DIR}/model.joblib",
            f"{MODEL_DIR}/model.yaml", "pipelines/batch-scoring.yaml"]
