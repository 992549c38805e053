"""What a submitter does to a running mission: send the lead a message, cancel it, resume it."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, status

from orchestrator.api.deps import Actor, ServiceDep, visible_mission
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routers.missions import mission_summary
from orchestrator.api.schemas import EventPublic, MessageCreate, MissionSummary
from orchestrator.audit import AppendedEvent, append_event
from orchestrator.db import session_scope
from orchestrator.db.approvals import pending_approvals
from orchestrator.db.missions import TERMINAL, get_mission, set_status
from orchestrator.db.models import Event, utcnow
from orchestrator.errors import InvalidTransition
from orchestrator.views import iso

__all__ = ["router", "event_public"]

router = APIRouter(prefix="/missions", tags=["missions"], responses=PROBLEM_RESPONSES)


def event_public(row: Event | AppendedEvent) -> dict:
    return {"seq": row.seq, "mission_id": row.mission_id, "kind": row.kind, "agent": row.actor, "step": row.step,
            "delegation_id": row.delegation_id, "ts": iso(row.ts), "payload": row.payload}


@router.post("/{mission_id}/messages", response_model=EventPublic, status_code=status.HTTP_201_CREATED)
def post_message(mission_id: str, body: MessageCreate, service: ServiceDep, caller: Actor) -> dict:
    """Send the lead agent a message; it reads it when its next step starts."""
    with session_scope(service.url) as session:
        mission = visible_mission(session, caller, mission_id)
        if mission.status in TERMINAL:
            raise InvalidTransition(f"mission {mission_id} is already {mission.status}; nobody would read it")
        row = append_event(session, mission_id=mission_id, kind="user.message", actor=caller.name,
                           payload={"text": body.text})
        if mission.status in ("queued", "running"):  # a job reads it (one already waiting will do)
            service.runner.queued(session, mission_id)
        return event_public(row)


@router.post("/{mission_id}/cancel", response_model=MissionSummary)
def cancel_mission(mission_id: str, service: ServiceDep, caller: Actor) -> object:
    """Cancel a mission; a running one stops after its current graph step."""
    with session_scope(service.url) as session:
        visible_mission(session, caller, mission_id)
    service.runner.cancel(mission_id, actor=caller.name)
    with session_scope(service.url) as session:
        return mission_summary(get_mission(session, mission_id))


@router.post("/{mission_id}/resume", response_model=MissionSummary)
def resume_mission(mission_id: str, service: ServiceDep, caller: Actor) -> object:
    """Queue a stopped mission again (a dead worker's, or a decided gate's) to go on from its checkpoint."""
    with session_scope(service.url) as session:
        mission = visible_mission(session, caller, mission_id)
        mission = get_mission(session, mission_id, lock=True)
        if mission.status in TERMINAL:
            raise InvalidTransition(f"mission {mission_id} is already {mission.status}; nothing to resume")
        if mission.status == "waiting_approval" and pending_approvals(session, mission_id=mission_id):
            raise InvalidTransition(f"mission {mission_id} is waiting for an approval: decide it first "
                                    "(POST /api/v1/approvals/{id}/decision)")
        expires = mission.lease_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if mission.status == "running" and mission.lease_owner and expires and expires > utcnow():
            raise InvalidTransition(f"mission {mission_id} is being run by {mission.lease_owner}")
        mission.lease_owner, mission.lease_expires_at = None, None
        if mission.status != "queued":
            set_status(session, mission_id=mission_id, status="queued", actor=caller.name)
        service.runner.queued(session, mission_id)  # its job, when missions run as jobs
        summary = mission_summary(mission)
    if service.pool is not None:
        service.pool.wake()
    return summary
