"""Benchmark: the generated batch scorer against raw ``model.predict`` on the same data, in the same run.

Builds the demo workspace, generates the batch-scoring package, writes the current batch tiled to N rows,
then measures each contender in a fresh process (peak RSS is per process):

- raw: ``pd.read_csv`` of the whole file + one ``model.predict`` call (and predict alone, timed apart);
- scorer: ``pipelines.batch_scoring.run`` (chunked read, score, monitoring hooks, write, metrics).

Prints rows/s, peak memory, the scorer/raw throughput ratio (target >= 0.8) and the scorer's peak memory
at two input sizes (flat memory: about the same). Usage: ``python bench/batch_scorer.py [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_RAW = """
import json, resource, sys, time
import joblib, pandas as pd, yaml
ws, data = sys.argv[1], sys.argv[2]
meta = yaml.safe_load(open(f"{ws}/models/anomaly-detector/model.yaml"))
model = joblib.load(f"{ws}/models/anomaly-detector/model.joblib")
t0 = time.perf_counter()
x = pd.read_csv(data, usecols=meta["features"])[meta["features"]].to_numpy(dtype=float)
t1 = time.perf_counter()
labels = model.predict(x)
t2 = time.perf_counter()
print(json.dumps({"rows": len(x), "seconds": t2 - t0, "predict_seconds": t2 - t1,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_SCORER = """
import json, resource, sys, time
from pathlib import Path
ws, data = sys.argv[1], sys.argv[2]
sys.path.insert(0, ws)
import os; os.chdir(ws)
from pipelines.batch_scoring import load_config, run
config = load_config("pipelines/batch-scoring.yaml")
t0 = time.perf_counter()
result = run(config, input_path=Path(data), output_path=Path(data).with_suffix(".scores.csv"))
t1 = time.perf_counter()
print(json.dumps({"rows": result["rows_scored"], "seconds": t1 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "alerts_fired": result["alerts_fired"]}))
"""


class _Recorder:
    def artifact(self, **row: Any) -> None:
        pass


def _prepare(ws: Path) -> None:
    from orchestrator.config import Settings
    from tools.context import ToolContext
    from tools.ml.alignment import align_data
    from tools.ml.demo import build_demo_workspace
    from tools.ml.pipeline import generate_batch_pipeline

    build_demo_workspace(ws)
    ctx = ToolContext(workspace=ws, mission_id="bench", agent="bench", step="bench",
                      settings=Settings(_env_file=None), recorder=_Recorder())  # type: ignore[arg-type]
    align_data.invoke({"model_path": "models/anomaly-detector", "reference_path": "data/reference.csv",
                       "current_path": "data/current.csv", "constraints": ["alert on precision drop >5%"], "ctx": ctx})
    generate_batch_pipeline.invoke({"ctx": ctx})


def _tile(ws: Path, rows: int, target: Path) -> None:
    import pandas as pd

    sample = pd.read_csv(ws / "data/current.csv")
    written = 0
    while written < rows:
        part = sample.iloc[: min(len(sample), rows - written)]
        part.to_csv(target, mode="a", header=written == 0, index=False)
        written += len(part)


def _measure(script: str, ws: Path, data: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", script, str(ws), str(data)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=250_000, help="smaller input for the flat-memory check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        _prepare(ws)
        big, small = Path(tmp) / "big.csv", Path(tmp) / "small.csv"
        _tile(ws, args.rows, big)
        _tile(ws, args.small, small)
        raw = _measure(_RAW, ws, big)
        scorer = _measure(_SCORER, ws, big)
        scorer_small = _measure(_SCORER, ws, small)
    raw_rps = raw["rows"] / raw["seconds"]
    predict_rps = raw["rows"] / raw["predict_seconds"]
    scorer_rps = scorer["rows"] / scorer["seconds"]
    print(f"rows: {args.rows:,}")
    print(f"raw read_csv + model.predict : {raw_rps:12,.0f} rows/s  peak {raw['peak_rss_mb']:8.1f} MiB")
    print(f"raw model.predict alone      : {predict_rps:12,.0f} rows/s")
    print(f"generated batch scorer       : {scorer_rps:12,.0f} rows/s  peak {scorer['peak_rss_mb']:8.1f} MiB "
          f"(alerts fired: {', '.join(scorer['alerts_fired']) or 'none'})")
    print(f"throughput ratio scorer/raw  : {scorer_rps / raw_rps:.2f}  (target >= 0.80; vs predict alone "
          f"{scorer_rps / predict_rps:.2f})")
    print(f"memory ratio scorer/raw      : {scorer['peak_rss_mb'] / raw['peak_rss_mb']:.2f}")
    print(f"scorer peak at {args.small:,} rows: {scorer_small['peak_rss_mb']:.1f} MiB; at {args.rows:,} rows: "
          f"{scorer['peak_rss_mb']:.1f} MiB (ratio {scorer['peak_rss_mb'] / scorer_small['peak_rss_mb']:.2f}, "
          "flat when close to 1)")


if __name__ == "__main__":
    main()
