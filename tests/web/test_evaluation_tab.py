"""The Evaluation tab: the mission's monitoring history drawn as SVG charts, one point per batch, the alerts that
fired marked, read through GET /missions/{id}/monitoring as the page reads everything."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import LiveServer, shoot, sign_in
from tools.ml.dashboard_page import append_rows

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

TEMPLATE_TEXT = (files("orchestrator.data") / "anomaly-batch-scoring.md").read_text()


def _row(batch: str, *, precision: float, psi: dict[str, float]) -> dict[str, Any]:
    fired = precision < 0.8
    drifted = [name for name, value in psi.items() if value >= 0.2]
    return {"batch": batch, "time": "2026-01-01T01:00:00Z", "source": "pipeline", "sha256": batch, "rows": 1000,
            "drift": {"statistic": "psi", "threshold": 0.2,
                      "features": {n: {"score": v, "test": "chi2 (binned)", "p_value": 0.5, "drifted": v >= 0.2}
                                   for n, v in psi.items()}},
            "metrics": {"precision": {"value": precision, "threshold": 0.8, "direction": "below",
                                      "alert": "precision_drop", "fired": fired},
                        "alert_rate": {"value": 0.07, "threshold": None, "direction": None, "alert": None,
                                       "fired": False}},
            "alerts_fired": (["feature_drift"] if drifted else []) + (["precision_drop"] if fired else [])}


@pytest.fixture(scope="module")
def mission(server: LiveServer) -> dict[str, Any]:
    """A mission stopped for review seconds after it starts (its model file is corrupt), with four batches in its
    workspace's monitoring history: the last one drifted and fired the precision alert."""
    server.api("POST", "/workspaces", json={"name": "monitored", "template": "demo"})
    workspace = server.home / "workspaces" / "monitored"
    for model in (workspace / "models").rglob("*.joblib"):
        model.write_bytes(b"this is not a model")
    created = server.api("POST", "/missions", json={"text": TEMPLATE_TEXT, "workspace": "monitored"})
    server.wait_for_status(created["id"], {"waiting_approval", "completed", "failed", "blocked"}, timeout_s=120)
    append_rows(workspace / "monitoring/history.jsonl", [
        _row("night-1", precision=0.9, psi={"mean_radius": 0.01, "mean_texture": 0.02}),
        _row("night-2", precision=0.88, psi={"mean_radius": 0.03, "mean_texture": 0.05}),
        _row("night-3", precision=0.86, psi={"mean_radius": 0.08, "mean_texture": 0.04}),
        _row("night-4", precision=0.71, psi={"mean_radius": 0.45, "mean_texture": 0.06}),
    ])
    return created


def test_the_evaluation_tab_draws_one_point_per_batch_and_marks_the_fired_alerts(
        server: LiveServer, mission: dict[str, Any], new_page: Any) -> None:
    page = new_page()
    sign_in(page, server)
    page.goto(f"{server.url}/#/missions/{mission['id']}")
    page.get_by_role("tab", name="Evaluation").click()
    expect(page).to_have_url(f"{server.url}/#/missions/{mission['id']}/evaluation")
    panel = page.locator("#panel-evaluation")
    precision = panel.locator('svg.metric-chart[data-name="precision"]')
    expect(precision.locator("circle.point")).to_have_count(4)
    expect(precision.locator("circle.point.fired")).to_have_count(1)
    assert precision.locator("circle.point").nth(3).get_attribute("data-state") == "fired"
    expect(precision.locator("circle.point.fired title")).to_contain_text("night-4: 0.71 (threshold 0.8) — ALERT FIRED")
    expect(precision.locator("path.threshold")).to_have_count(1)
    for name, fired in (("mean_radius", 1), ("mean_texture", 0)):
        chart = panel.locator(f'svg.drift-chart[data-name="{name}"]')
        expect(chart.locator("circle.point")).to_have_count(4)
        expect(chart.locator("circle.point.fired")).to_have_count(fired)
    expect(panel.locator('svg.metric-chart[data-name="alert_rate"] circle.point')).to_have_count(4)
    expect(panel.locator("table.eval-batches tbody tr")).to_have_count(4)
    expect(panel.locator("table.eval-batches tbody tr").nth(3)).to_contain_text("feature_drift, precision_drop")
    expect(panel).to_contain_text("4 batches, 1 with an alert fired")
    shoot(page, "evaluation-tab")
