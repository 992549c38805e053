"""The feature store's runner: applies the workspace's Feast repository, materialises it into the online store
and reads rows back, run INSIDE the sandbox with a Python that has Feast (``tools.ml.feature_store``).

The repository's ``features.py`` is workspace code: it is imported here only. This file imports nothing from
the project and runs as ``python -I -c <this source> <request>``; it prints one JSON answer on standard output.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path.cwd()
"""The workspace (``/workspace`` in the sandbox): the runner is started there."""


def _objects(module: Any) -> list[Any]:
    from feast import Entity, FeatureView

    return [v for v in vars(module).values() if isinstance(v, (Entity, FeatureView))]


def _dry_run(config_path: str) -> dict[str, Any]:
    """The scoring pipeline's dry run with its features read from the store, in this process (Feast is imported
    once): the workspace's own package, from the workspace root."""
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    try:
        from pipelines.batch_scoring.config import load_config
        from pipelines.batch_scoring.scoring import run as score

        config = load_config(config_path)
        config.features.source = "feast"
        result = score(config, dry_run=True)
    except Exception as exc:  # the pipeline's own error (a ValueError naming the problem), or a bug in it
        return {"exit_code": 1, "error": f"{type(exc).__name__}: {str(exc)[:600]}"}
    return {"exit_code": 0, "rows_scored": result.get("rows_scored"), "feature_source": result.get("feature_source")}


def run(request: dict[str, Any]) -> dict[str, Any]:
    os.environ["FEAST_USAGE"] = "False"  # no usage telemetry (there is no network anyway)
    repo = request["repo"]
    os.chdir(repo)
    started = time.perf_counter()
    import pandas as pd
    from feast import FeatureStore

    imported = time.perf_counter()
    spec = importlib.util.spec_from_file_location("feature_definitions", "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    objects = _objects(module)
    store = FeatureStore(repo_path=".")
    store.apply(objects)
    applied = time.perf_counter()
    as_of = datetime.fromisoformat(request["as_of"])
    store.materialize(as_of - timedelta(seconds=1), as_of + timedelta(seconds=1))
    materialised = time.perf_counter()
    view, entity, features = request["feature_view"], request["entity_column"], request["features"]
    offline = pd.read_parquet(request["source"])
    current = offline[offline["event_timestamp"] == pd.Timestamp(as_of)]
    sample = current.head(int(request.get("check_rows", 200)))
    online = store.get_online_features(features=[f"{view}:{f}" for f in features],
                                       entity_rows=[{entity: v} for v in sample[entity].tolist()]).to_df()
    merged = sample[[entity, *features]].merge(online, on=entity, suffixes=("", "__online"))
    missing = int(online[features].isna().any(axis=1).sum())
    diffs = [float((merged[f] - merged[f + "__online"]).abs().max()) for f in features
             if pd.api.types.is_numeric_dtype(merged[f])]
    mismatched = [f for f in features if not pd.api.types.is_numeric_dtype(merged[f])
                  and not (merged[f].astype(str) == merged[f + "__online"].astype(str)).all()]
    dry_run = _dry_run(request["dry_run_config"]) if request.get("dry_run_config") else None
    return {"dry_run": dry_run, "entities": [o.name for o in objects if type(o).__name__ == "Entity"],
            "feature_views": [o.name for o in objects if type(o).__name__ == "FeatureView"],
            "materialised_rows": int(len(current)), "offline_rows": int(len(offline)),
            "check": {"rows": int(len(sample)), "matched": int(len(merged)), "missing": missing,
                      "max_abs_diff": max(diffs, default=0.0), "mismatched_columns": mismatched},
            "seconds": {"import": round(imported - started, 3), "apply": round(applied - imported, 3),
                        "materialise": round(materialised - applied, 3),
                        "read_back": round(time.perf_counter() - materialised, 3)},
            "feast_version": __import__("feast").__version__}


def main(argv: list[str]) -> int:
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # Feast's own prints go to stderr: stdout carries the answer alone
    try:
        answer = {"ok": True, **run(json.loads(argv[1]))}
    except Exception as exc:  # Feast raises its own errors for a bad repository: say which
        answer = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:800]}", "trace": traceback.format_exc()[-2000:]}
    with os.fdopen(answer_fd, "w") as out:
        json.dump(answer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
