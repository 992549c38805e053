"""The concurrent-missions benchmark in a small configuration: every mission completes once, chain intact.

Timing is the benchmark's business (it prints ratios); this checks that what it measures is right.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.support.fake_openai import fake_openai

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("concurrent_missions", ROOT / "bench" / "concurrent_missions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_eight_missions_on_a_fake_model_each_complete_once(tmp_path: Path) -> None:
    bench = _bench()
    url = f"sqlite:///{tmp_path / 'orchestrator.db'}"
    from orchestrator.db.schema import upgrade

    upgrade(url)
    with fake_openai(latency=0.05) as server:
        outcome = bench.run_once(url, tmp_path, server, workers=1, concurrency=8, missions=8, timeout=240)
    assert outcome.problems == []
    assert outcome.answers_per_mission == 18  # the scripted path ran whole: 7 steps, 2 handoffs
    assert outcome.most_waiting >= 1 and outcome.mem_per_waiting_mb is not None
    assert outcome.per_min > 0 and outcome.ideal_per_min > 0
