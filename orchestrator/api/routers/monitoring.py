"""A mission's monitoring history: one row per evaluated or scored batch, as the Evaluation tab draws it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from orchestrator.api.deps import Reader, SessionDep, visible_mission
from orchestrator.api.problems import PROBLEM_RESPONSES
from tools.ml.dashboard import monitoring_history

__all__ = ["router", "MonitoringPublic"]

router = APIRouter(prefix="/missions", tags=["monitoring"], responses=PROBLEM_RESPONSES)


class MonitoringPublic(BaseModel):
    """The workspace's ``monitoring/history.jsonl``, oldest batch first."""

    path: str = Field(description="The history file in the mission's workspace.")
    rows: list[dict[str, Any]] = Field(description="One per batch: batch, time, source (evaluation or pipeline), "
                                                   "rows, drift per feature, metrics with thresholds, alerts_fired.")
    unreadable_lines: int = Field(description="Lines of the file that are not a history row (skipped).")
    dashboard: str | None = Field(description="The dashboard page in the workspace, once drawn.")


@router.get("/{mission_id}/monitoring", response_model=MonitoringPublic)
def read_monitoring(mission_id: str, session: SessionDep, caller: Reader) -> dict[str, Any]:
    """The mission's monitoring history: per-batch drift, metrics against thresholds and the alerts fired."""
    mission = visible_mission(session, caller, mission_id)
    return monitoring_history(Path(mission.workspace))
