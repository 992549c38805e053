"""Read back what a run recorded, for assertions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from orchestrator.db import session_scope
from orchestrator.db.models import Artifact
from tools.context import ToolContext


def recorded_artifacts(ctx: ToolContext) -> list[dict[str, Any]]:
    """Artifacts recorded through ``ctx`` (path, sha256, size, kind, agent, step), in path order."""
    url = ctx.settings.resolved_database_url
    with session_scope(url) as session:
        rows = session.scalars(select(Artifact).where(Artifact.mission_id == ctx.mission_id)
                               .order_by(Artifact.path)).all()
        return [{"path": r.path, "sha256": r.sha256, "size": r.size, "kind": r.kind, "agent": r.agent,
                 "step": r.step} for r in rows]
