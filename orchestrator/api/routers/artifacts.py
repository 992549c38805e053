"""What a mission produced and did: its artifacts (listed and downloadable), tasks and tool calls."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import select

from orchestrator.api.deps import Reader, SessionDep, visible_mission
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.schemas import ArtifactPublic, TaskPublic, ToolCallPublic
from orchestrator.db.artifacts import list_tasks, task_dict
from orchestrator.db.models import Artifact, ToolCall
from orchestrator.errors import ToolDenied
from orchestrator.views import artifact_view, iso
from tools.workspace import resolve_in_workspace

__all__ = ["router"]

router = APIRouter(prefix="/missions", tags=["artifacts"], responses=PROBLEM_RESPONSES)
# Reports open in the browser, but in a sandbox: their scripts run in an opaque origin, away from the API key.
_INLINE_HTML_HEADERS = {"Content-Security-Policy": "sandbox allow-scripts", "X-Content-Type-Options": "nosniff"}


@router.get("/{mission_id}/artifacts", response_model=list[ArtifactPublic])
def list_artifacts(mission_id: str, session: SessionDep, caller: Reader) -> list[dict]:
    """List the files the mission's agents wrote (latest version of each path, with its producer)."""
    visible_mission(session, caller, mission_id)
    rows = session.scalars(select(Artifact).where(Artifact.mission_id == mission_id).order_by(Artifact.path)).all()
    return [artifact_view(row) for row in rows]


@router.get("/{mission_id}/artifacts/{path:path}", response_class=FileResponse,
            responses={200: {"description": "The file; HTML reports inline, other files as attachments.",
                             "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                 "format": "binary"}}}}})
def download_artifact(mission_id: str, path: str, session: SessionDep, caller: Reader) -> FileResponse:
    """Download a file of the mission's workspace (confined to it; HTML reports are served inline)."""
    mission = visible_mission(session, caller, mission_id)
    try:
        target = resolve_in_workspace(Path(mission.workspace), path)
    except ToolDenied as exc:
        raise HTTPException(404, f"no file {path!r} in the mission's workspace ({exc})") from None
    if not target.is_file():
        raise HTTPException(404, f"no file {path!r} in the mission's workspace")
    if target.suffix.lower() in (".html", ".htm"):
        return FileResponse(target, media_type="text/html", headers=_INLINE_HTML_HEADERS, filename=target.name,
                            content_disposition_type="inline")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=media_type, filename=target.name,
                        headers={"X-Content-Type-Options": "nosniff"})


@router.get("/{mission_id}/tasks", response_model=list[TaskPublic])
def list_mission_tasks(mission_id: str, session: SessionDep, caller: Reader) -> list[dict]:
    """List the entries of the agents' task tracker for this mission."""
    visible_mission(session, caller, mission_id)
    return [task_dict(row) for row in list_tasks(session, mission_id=mission_id)]


@router.get("/{mission_id}/tool-calls", response_model=list[ToolCallPublic])
def list_tool_calls(mission_id: str, session: SessionDep, caller: Reader) -> list[dict]:
    """List the mission's tool calls: tool, agent, step, status, policy decision, duration, redacted result."""
    visible_mission(session, caller, mission_id)
    rows = session.scalars(select(ToolCall).where(ToolCall.mission_id == mission_id).order_by(ToolCall.id)).all()
    return [{"id": r.id, "call_id": r.call_id, "tool": r.tool, "agent": r.agent, "step": r.step,
             "delegation_id": r.delegation_id, "status": r.status, "decision": r.decision,
             "duration_ms": r.duration_ms, "sandboxed": r.sandboxed, "result": r.result,
             "created_at": iso(r.created_at)} for r in rows]
