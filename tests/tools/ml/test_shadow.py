"""The shadow comparison of a retrained candidate with production on the same rows: agreement, metric differences
with paired bootstrap intervals, latency measured in the sandbox, and the decision the mission's thresholds drive."""

from __future__ import annotations

import json

from tests.tools.ml.support import PATHS, call
from tools.context import ToolContext
from tools.ml.alignment import align_data
from tools.ml.demo import DemoInfo
from tools.ml.release import write_deployment_notes
from tools.ml.remediation import retrain_candidate
from tools.ml.shadow import SHADOW_PATH, compare_shadow

CANDIDATE = "models/anomaly-detector-candidate"


def test_a_better_candidate_is_promoted_and_a_slow_one_held(tool_ctx: ToolContext, demo: DemoInfo) -> None:
    call(align_data, tool_ctx, **PATHS, constraints=["alert on precision drop >5%"])
    retrained = call(retrain_candidate, tool_ctx, **PATHS, label_column="is_anomaly")
    result = call(compare_shadow, tool_ctx, model_path=PATHS["model_path"], candidate_path=CANDIDATE,
                  current_path="data/current.csv", constraints=["alert on precision drop >5%"])
    doc = json.loads((tool_ctx.workspace / SHADOW_PATH).read_text())
    # The rows the candidate was not trained on, the same as the retraining's held-out third.
    assert doc["data"]["rows"] == retrained["holdout_rows"] and "not trained on" in doc["data"]["which"]
    precision = doc["metrics"]["precision"]
    assert (precision["production"], precision["candidate"]) == (retrained["production"]["precision"],
                                                                  retrained["candidate"]["precision"])
    assert precision["interval"]["low"] <= precision["delta"] <= precision["interval"]["high"]
    assert precision["interval"]["low"] > 0 and precision["monitored"]
    assert 0.5 < doc["agreement"]["rate"] < 1 and doc["agreement"]["rows_differing"] > 0
    for who in ("production", "candidate"):
        latency = doc["latency"][who]
        assert latency["single_row_calls"] > 0 and 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["max_ms"]
        assert latency["rows_per_second"] > 0
    assert result["decision"] == "promote" and result["failed_gates"] == []
    assert {g["gate"] for g in doc["gates"]} == {"precision_drop holds for the candidate",
                                                 "the candidate fixes precision_drop beyond sampling noise"}

    notes = json.loads(write_deployment_notes.invoke({"ctx": tool_ctx, "constraints": ["alert on precision drop >5%"]}))
    text = (tool_ctx.workspace / notes["path"]).read_text()
    assert f"difference {precision['delta']:+.4f}" in text and "decision **promote**" in text
    assert f"offline shadow already run: decision **promote** on {doc['data']['rows']} rows" in text

    # A latency target no model meets holds the candidate back, and says which gate.
    held = call(compare_shadow, tool_ctx, model_path=PATHS["model_path"], candidate_path=CANDIDATE,
                current_path="data/current.csv", constraints=["alert on precision drop >5%", "p95 latency under 0.001 ms"])
    assert held["decision"] == "hold"
    assert held["failed_gates"] == ["p95 latency under 0.001 ms (p95 latency under 0.001 ms)"]


def test_agreement_reads_as_a_rate_or_a_regressors_difference() -> None:
    from tools.ml.shadow import agreement_text

    assert agreement_text({"rate": 0.97, "rows_differing": 3, "compared": "flags"}) == "agreement 0.97"
    assert agreement_text({"rate": None, "mean_abs_difference": 1.25, "correlation": 0.99, "compared": "values"}) \
        == "mean absolute difference 1.25 (correlation 0.99)"
    assert agreement_text(None) == "agreement not computed"
