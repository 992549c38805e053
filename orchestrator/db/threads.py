"""Threads of LangGraph clients: created before their mission, then mapped to the one mission they run."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.orm import Session

from orchestrator.db.models import Mission, Thread, utcnow
from orchestrator.errors import InvalidTransition, MissionNotFound

__all__ = ["create_thread", "get_thread", "thread_of_mission", "attach_mission", "search_threads", "update_meta"]


def create_thread(session: Session, *, owner: str, meta: dict[str, Any], thread_id: str | None = None,
                  if_exists: str = "raise") -> Thread:
    """A new thread (a fresh UUID unless the client chose the id); an existing id is refused, or returned
    as it is with ``if_exists="do_nothing"``."""
    if thread_id is not None:
        existing = session.get(Thread, thread_id)
        if existing is not None:
            if if_exists == "do_nothing":
                return existing
            raise InvalidTransition(f"thread {thread_id!r} already exists (pass if_exists='do_nothing' to reuse it)")
    now = utcnow()
    row = Thread(thread_id=thread_id or str(uuid.uuid4()), owner=owner, meta=meta, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def get_thread(session: Session, thread_id: str) -> Thread:
    """The thread with this id, or :class:`MissionNotFound` (a 404 for the API)."""
    row = session.get(Thread, thread_id)
    if row is None:
        raise MissionNotFound(f"no thread with id {thread_id!r}")
    return row


def thread_of_mission(session: Session, mission_id: str) -> Thread | None:
    return session.scalar(select(Thread).where(Thread.mission_id == mission_id))


def attach_mission(session: Session, *, thread_id: str, mission_id: str) -> bool:
    """Map the thread to the mission its first run created; False when another run got there first."""
    result = session.execute(update(Thread).where(Thread.thread_id == thread_id, Thread.mission_id.is_(None))
                             .values(mission_id=mission_id, updated_at=utcnow()))
    return result.rowcount == 1


def update_meta(session: Session, *, thread_id: str, meta: dict[str, Any]) -> Thread:
    """Merge ``meta`` into the thread's metadata."""
    row = get_thread(session, thread_id)
    row.meta = {**(row.meta or {}), **meta}
    row.updated_at = utcnow()
    return row


_SORTS = {"thread_id": Thread.thread_id, "created_at": Thread.created_at, "updated_at": Thread.updated_at,
          "status": Mission.status}


def search_threads(session: Session, *, owner: str | None = None, ids: list[str] | None = None,
                   mission_statuses: list[str] | None = None, include_unstarted: bool = True,
                   sort_by: str = "created_at", descending: bool = True) -> Select[tuple[Thread, Mission]]:
    """The statement listing threads (with their mission, if any) by owner, id and mission status."""
    stmt = select(Thread, Mission).outerjoin(Mission, Mission.id == Thread.mission_id)
    if owner is not None:
        stmt = stmt.where(Thread.owner == owner)
    if ids:
        stmt = stmt.where(Thread.thread_id.in_(ids))
    if mission_statuses is not None:
        started = Mission.status.in_(mission_statuses)
        stmt = stmt.where(or_(started, Thread.mission_id.is_(None)) if include_unstarted else and_(started))
    column = _SORTS.get(sort_by, Thread.created_at)
    return stmt.order_by(column.desc() if descending else column.asc(), Thread.thread_id)
