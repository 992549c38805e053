"""The audit trail of a mission: its events with their hashes, the chain's verdict, a JSON Lines export."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from orchestrator.api.deps import Auditor, ServiceDep, SessionDep, visible_mission
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routers.mission_actions import event_public
from orchestrator.api.schemas import AuditEventPublic, AuditVerifyPublic
from orchestrator.audit import verify_chain
from orchestrator.db import session_scope
from orchestrator.db.models import Event

__all__ = ["router"]

router = APIRouter(prefix="/missions", tags=["audit"], responses=PROBLEM_RESPONSES)
_NDJSON = "application/x-ndjson"


def _audit_event(row: Event) -> dict:
    return {**event_public(row), "id": row.id, "prev_hash": row.prev_hash, "hash": row.hash}


@router.get("/{mission_id}/audit", response_model=list[AuditEventPublic])
def read_audit(mission_id: str, session: SessionDep, caller: Auditor) -> list[dict]:
    """List the mission's audit events in sequence order, with their chain hashes."""
    visible_mission(session, caller, mission_id)
    rows = session.scalars(select(Event).where(Event.mission_id == mission_id).order_by(Event.seq)).all()
    return [_audit_event(row) for row in rows]


@router.get("/{mission_id}/audit/verify", response_model=AuditVerifyPublic)
def verify_audit(mission_id: str, session: SessionDep, caller: Auditor) -> dict:
    """Recompute the mission's hash chain and report whether it is intact, or its first bad entry."""
    visible_mission(session, caller, mission_id)
    report = verify_chain(session, mission_id)
    return {"intact": report.intact, "events": report.events, "first_bad_seq": report.first_bad_seq,
            "first_bad_id": report.first_bad_id, "reason": report.reason, "head": report.head}


@router.get("/{mission_id}/audit/export", response_class=StreamingResponse,
            responses={200: {"description": "One audit event (with its hashes) per line.",
                             "content": {_NDJSON: {"schema": {"type": "string"}}}}})
def export_audit(mission_id: str, service: ServiceDep, caller: Auditor) -> StreamingResponse:
    """Export the mission's audit trail as JSON Lines, one event per line with its hashes."""
    with session_scope(service.url) as session:
        visible_mission(session, caller, mission_id)

    def lines() -> Iterator[bytes]:
        after = 0
        while True:
            with session_scope(service.url, readonly=True) as session:
                rows = session.scalars(select(Event).where(Event.mission_id == mission_id, Event.seq > after)
                                       .order_by(Event.seq).limit(1000)).all()
                chunk = [_audit_event(row) for row in rows]
            if not chunk:
                return
            after = chunk[-1]["seq"]
            yield "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in chunk).encode()

    return StreamingResponse(lines(), media_type=_NDJSON, headers={
        "Content-Disposition": f'attachment; filename="mission-{mission_id}-audit.jsonl"'})
