"""GET /missions/{id}/monitoring: the workspace's monitoring history as the Evaluation tab reads it."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from orchestrator.config import Settings
from tests.api.conftest import auth
from tools.ml.dashboard_page import append_rows


def _row(batch: str, psi: float, fired: bool) -> dict:
    return {"batch": batch, "time": "2026-01-01T01:00:00Z", "source": "pipeline", "sha256": batch, "rows": 100,
            "drift": {"statistic": "psi", "threshold": 0.2, "features": {"x": {"score": psi, "drifted": psi >= 0.2}}},
            "metrics": {"precision": {"value": 0.7 if fired else 0.9, "threshold": 0.8, "direction": "below",
                                      "alert": "precision_drop", "fired": fired}},
            "alerts_fired": ["precision_drop"] if fired else []}


def test_the_history_is_read_with_the_mission_and_its_rights(idle_client: TestClient, keys: dict[str, str],
                                                            api_settings: Settings) -> None:
    created = idle_client.post("/api/v1/missions", json={"text": "Mission: monitor", "workspace": "ws"},
                               headers=auth(keys["submitter"])).json()
    url = f"/api/v1/missions/{created['id']}/monitoring"
    empty = idle_client.get(url, headers=auth(keys["submitter"]))
    assert empty.status_code == 200 and empty.json() == {"path": "monitoring/history.jsonl", "rows": [],
                                                         "unreadable_lines": 0, "dashboard": None}
    history = api_settings.workspace_roots[0] / "ws/monitoring/history.jsonl"
    append_rows(history, [_row("night-1", 0.01, False), _row("night-2", 0.4, True)])
    with history.open("a") as handle:
        handle.write("not json\n")
    body = idle_client.get(url, headers=auth(keys["auditor"])).json()
    assert [r["batch"] for r in body["rows"]] == ["night-1", "night-2"] and body["unreadable_lines"] == 1
    assert body["rows"][1]["metrics"]["precision"] == {"value": 0.7, "threshold": 0.8, "direction": "below",
                                                       "alert": "precision_drop", "fired": True}
    assert json.loads(history.read_text().splitlines()[0])["schema"] == 1
    assert idle_client.get(url).status_code == 401
    assert idle_client.get("/api/v1/missions/nosuchmission/monitoring", headers=auth(keys["admin"])).status_code == 404
