"""Missions and their procedure steps: creation, status changes and leases, each with its audit event."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from orchestrator.audit import append_event
from orchestrator.db.models import Mission, Step, utcnow
from orchestrator.errors import InvalidTransition, MissionNotFound

__all__ = [
    "MissionStatus", "STEPS", "TERMINAL", "create_mission", "get_mission", "set_status", "start_step", "finish_step",
    "claim_next", "claim_mission", "renew_lease", "release_lease",
]

MissionStatus = Literal["queued", "running", "waiting_approval", "completed", "failed", "rejected", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "rejected", "cancelled"})
STEPS: tuple[str, ...] = ("align", "design", "implement", "evaluate", "package", "release")
"""The ML engineer's six procedure steps, in order (the seed's Operating Procedure)."""


def create_mission(session: Session, *, text: str, spec: dict[str, Any], workspace: str, owner: str = "cli",
                   model: str = "builtin", auto_approve_by: str | None = None, idempotency_key: str | None = None,
                   request_sha256: str | None = None) -> Mission:
    """Insert a queued mission with its six pending steps, and record it."""
    mission = Mission(id=uuid.uuid4().hex[:12], text=text, spec=spec, workspace=workspace, status="queued",
                      owner=owner, model=model, auto_approve_by=auto_approve_by, idempotency_key=idempotency_key,
                      request_sha256=request_sha256)
    session.add(mission)
    session.flush()
    for position, name in enumerate(STEPS):
        session.add(Step(mission_id=mission.id, name=name, position=position, status="pending"))
    append_event(session, mission_id=mission.id, kind="mission.queued", actor=owner,
                 payload={"text": text, "spec": spec, "workspace": workspace, "model": model})
    return mission


def get_mission(session: Session, mission_id: str, *, lock: bool = False) -> Mission:
    """The mission with this id, or :class:`MissionNotFound`."""
    stmt = select(Mission).where(Mission.id == mission_id)
    if lock:
        stmt = stmt.with_for_update()
    mission = session.scalar(stmt)
    if mission is None:
        raise MissionNotFound(f"no mission with id {mission_id!r} (see `orchestrator missions list`)")
    return mission


def set_status(session: Session, *, mission_id: str, status: MissionStatus, actor: str,
               error: str | None = None, step: str | None = None) -> Mission:
    """Change a mission's status and record the change; terminal missions do not change again."""
    mission = get_mission(session, mission_id, lock=True)
    if mission.status in TERMINAL and status != mission.status:
        raise InvalidTransition(f"mission {mission_id} is already {mission.status}; it cannot become {status}")
    if mission.status == status and error is None:
        return mission
    mission.status = status
    mission.error = error
    if status in TERMINAL:
        mission.lease_owner = None
        mission.lease_expires_at = None
    payload: dict[str, Any] = {"status": status}
    if error:
        payload["error"] = error
    append_event(session, mission_id=mission_id, kind="mission.status", actor=actor, step=step, payload=payload)
    return mission


def _step(session: Session, mission_id: str, name: str) -> Step:
    row = session.scalar(select(Step).where(Step.mission_id == mission_id, Step.name == name))
    if row is None:  # the report step and any future step are created on first use
        position = session.scalar(select(Step.position).where(Step.mission_id == mission_id)
                                  .order_by(Step.position.desc()).limit(1))
        row = Step(mission_id=mission_id, name=name, position=(position or 0) + 1, status="pending")
        session.add(row)
        session.flush()
    return row


def start_step(session: Session, *, mission_id: str, name: str, actor: str) -> Step:
    """Mark a step running (again, on a later round) and record it."""
    row = _step(session, mission_id, name)
    row.status = "running"
    row.rounds += 1
    if row.started_at is None:
        row.started_at = utcnow()
    row.finished_at = None
    session.execute(update(Mission).where(Mission.id == mission_id).values(current_step=name)
                    .execution_options(synchronize_session=False))
    append_event(session, mission_id=mission_id, kind="step.started", actor=actor, step=name,
                 payload={"round": row.rounds})
    return row


def finish_step(session: Session, *, mission_id: str, name: str, actor: str, status: str = "done",
                summary: str = "") -> Step:
    """Mark a step done (or failed/blocked) with its summary and record it."""
    row = _step(session, mission_id, name)
    row.status = status
    row.summary = summary
    row.finished_at = utcnow()
    started = row.started_at or row.finished_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=row.finished_at.tzinfo)
    duration_s = (row.finished_at - started).total_seconds()
    append_event(session, mission_id=mission_id, kind="step.finished", actor=actor, step=name,
                 payload={"status": status, "summary": summary, "duration_s": round(duration_s, 3)})
    return row


def claim_mission(session: Session, *, mission_id: str, worker: str, lease_s: float,
                  statuses: tuple[str, ...] = ("queued", "running")) -> Mission | None:
    """Take the lease on one mission if it is free (or its lease expired); None when someone else holds it."""
    now = utcnow()
    result = session.execute(
        update(Mission)
        .where(Mission.id == mission_id, Mission.status.in_(statuses),
               or_(Mission.lease_owner.is_(None), Mission.lease_owner == worker, Mission.lease_expires_at < now))
        .values(lease_owner=worker, lease_expires_at=now + timedelta(seconds=lease_s))
    )
    if result.rowcount != 1:
        return None
    return get_mission(session, mission_id)


def claim_next(session: Session, *, worker: str, lease_s: float) -> Mission | None:
    """Claim the oldest runnable mission: queued, or running with an expired lease (its process died).

    On PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP LOCKED`` so that concurrent
    workers never claim the same mission; on SQLite the write lock taken at BEGIN does the same.
    """
    now = utcnow()
    stmt = (
        select(Mission)
        .where(or_(Mission.status == "queued",
                   (Mission.status == "running") & or_(Mission.lease_expires_at < now, Mission.lease_owner.is_(None))))
        .where(or_(Mission.lease_owner.is_(None), Mission.lease_expires_at < now))
        .order_by(Mission.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    mission = session.scalar(stmt)
    if mission is None:
        return None
    mission.lease_owner = worker
    mission.lease_expires_at = now + timedelta(seconds=lease_s)
    session.flush()
    return mission


def renew_lease(session: Session, *, mission_id: str, worker: str, lease_s: float) -> bool:
    """Extend the lease this worker holds; False when it lost it."""
    result = session.execute(
        update(Mission).where(Mission.id == mission_id, Mission.lease_owner == worker)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
    )
    return result.rowcount == 1


def release_lease(session: Session, *, mission_id: str, worker: str) -> None:
    session.execute(update(Mission).where(Mission.id == mission_id, Mission.lease_owner == worker)
                    .values(lease_owner=None, lease_expires_at=None))
