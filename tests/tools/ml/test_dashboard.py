"""The monitoring history and the drift dashboard: the evaluation and every production run of the generated
scoring pipeline append the same rows; the page draws one point per batch and marks the alerts that fired."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.dashboard import DASHBOARD_PATH, HISTORY_PATH, check_dashboard, monitoring_history
from tools.ml.demo import DemoInfo
from tools.ml.evaluation import evaluate_model
from tools.ml.pipeline import generate_batch_pipeline


def _history(ws: Path) -> list[dict]:
    return [json.loads(line) for line in (ws / HISTORY_PATH).read_text().splitlines()]


def _points(page: str, kind: str, name: str) -> list[str]:
    """The point elements (``<circle ...>``) of one chart of the dashboard page."""
    chart = re.search(rf'<svg class="{kind}-chart" data-name="{re.escape(name)}".*?</svg>', page, re.S)
    assert chart, f"no {kind} chart for {name}"
    return re.findall(r'<circle class="point[^"]*"[^>]*>', chart.group(0))


def test_an_evaluation_appends_one_row_per_batch_and_draws_the_dashboard(tool_ctx: ToolContext,
                                                                         demo: DemoInfo) -> None:
    call(align_data, tool_ctx, **PATHS, constraints=["alert on precision drop >5%"])
    result = call(evaluate_model, tool_ctx, **PATHS, label_column="is_anomaly")
    assert HISTORY_PATH in result["files"] and DASHBOARD_PATH in result["files"]
    ws = tool_ctx.workspace
    [row] = _history(ws)
    assert (row["batch"], row["source"], row["rows"]) == ("current", "evaluation", demo.current_rows)
    drifted = sorted(name for name, f in row["drift"]["features"].items() if f["drifted"])
    assert drifted == sorted(demo.injected_shift)
    assert all(f["test"] == "ks" and 0 <= f["p_value"] <= 1 for f in row["drift"]["features"].values())
    precision = row["metrics"]["precision"]
    evaluation = json.loads((ws / "reports/evaluation.json").read_text())
    alert = next(a for a in evaluation["alerts"] if a["name"] == "precision_drop")
    assert (precision["value"], precision["threshold"], precision["fired"]) == (alert["value"], alert["threshold"], True)
    assert set(row["alerts_fired"]) == {"feature_drift", "precision_drop"}
    page = (ws / DASHBOARD_PATH).read_text()
    [point] = _points(page, "metric", "precision")
    assert 'data-state="fired"' in point
    assert len(_points(page, "drift", demo.features[0])) == 1
    assert "<script" not in page and not re.search(r"""(src|href)=["']https?://""", page)

    # The same batch evaluated again with the same model adds nothing: one row per batch and model.
    call(evaluate_model, tool_ctx, **PATHS, label_column="is_anomaly")
    assert len(_history(ws)) == 1
    assert monitoring_history(ws)["rows"] == _history(ws)
    board = check_dashboard(ws)  # the report's check reads the page back
    assert board["ok"] and (board["rows"], board["alerts_marked"]) == (1, 1), board
    (ws / DASHBOARD_PATH).write_text(page.replace('data-state="fired"', 'data-state="ok"'))
    assert check_dashboard(ws)["problems"] == ["1 metric alerts fired in the history but 0 are marked on the page"]


def _batch(frame: pd.DataFrame, rows: int, seed: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    out = frame.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    for name, sigmas in (shift or {}).items():
        out[name] = out[name] + sigmas * frame[name].std()
    out["record_id"] = np.arange(len(out)) + 10_000_000 * (seed + 1)
    return out


def test_three_production_runs_add_three_rows_the_dashboard_shows(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    ws = tool_ctx.workspace
    call(align_data, tool_ctx, **PATHS, constraints=["alert on precision drop >5%"])
    call(evaluate_model, tool_ctx, **PATHS, label_column="is_anomaly")
    assert call(generate_batch_pipeline, tool_ctx)["status"] == "ok"
    before = len(_history(ws))
    reference = pd.read_csv(ws / "data/reference.csv")
    shifted = demo.features[4]
    batches = {"night-1": _batch(reference, 1500, 1), "night-2": _batch(reference, 1500, 2),
               "night-3": _batch(reference, 1500, 3, shift={shifted: 3.0})}
    (ws / "data/batches").mkdir()
    for name, frame in batches.items():
        frame.to_csv(ws / f"data/batches/{name}.csv", index=False)
        run = subprocess.run([sys.executable, "-m", "pipelines.batch_scoring", "--input", f"data/batches/{name}.csv"],
                             cwd=ws, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr[-2000:]
        assert json.loads(run.stdout.strip().splitlines()[-1])["history"]["batches"] == len(_history(ws))
    rows = _history(ws)
    assert len(rows) == before + 3
    assert [r["batch"] for r in rows[-3:]] == list(batches) and {r["source"] for r in rows[-3:]} == {"pipeline"}
    assert [r["rows"] for r in rows[-3:]] == [1500, 1500, 1500]
    assert [bool(r["drift"]["features"][shifted]["drifted"]) for r in rows[-3:]] == [False, False, True]
    assert "feature_drift" in rows[-1]["alerts_fired"] and "feature_drift" not in rows[-2]["alerts_fired"]
    page = (ws / DASHBOARD_PATH).read_text()
    assert len(_points(page, "drift", shifted)) == len(rows)
    assert len(_points(page, "metric", "precision")) == len(rows)
    assert [('data-state="fired"' in p) for p in _points(page, "drift", shifted)][-3:] == [False, False, True]
    for name in batches:
        assert f"<td>{name}</td>" in page
