"""The mission's event trail as Server-Sent Events: replayed from the database, then followed live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import select
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from orchestrator.api.deps import Reader, ServiceDep, visible_mission
from orchestrator.api.keys import Caller
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routers.mission_actions import event_public
from orchestrator.db import session_scope
from orchestrator.db.missions import TERMINAL
from orchestrator.db.models import Event, Mission
from orchestrator.errors import InputError

__all__ = ["router"]

router = APIRouter(prefix="/missions", tags=["events"], responses=PROBLEM_RESPONSES)
_BATCH = 500
MAX_SEQ = 2**31 - 1
"""The largest seq an event can have (``events.seq`` is a 32-bit integer on PostgreSQL)."""

_SSE_DOC = {200: {"description": "One SSE message per event: `id` = seq, `event` = kind, `data` = the event "
                                 "as JSON (see EventPublic). Ends once the mission is finished and all its "
                                 "events were sent.",
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


def _check(url: str, caller: Caller, mission_id: str) -> None:
    with session_scope(url, readonly=True) as session:
        visible_mission(session, caller, mission_id)


def _fetch(url: str, mission_id: str, after: int) -> tuple[str, list[dict]]:
    """The mission's status, then the events after ``after`` (status first: a terminal one has all its events)."""
    with session_scope(url, readonly=True) as session:
        status = session.scalar(select(Mission.status).where(Mission.id == mission_id)) or "cancelled"
    with session_scope(url, readonly=True) as session:
        rows = session.scalars(select(Event).where(Event.mission_id == mission_id, Event.seq > after)
                               .order_by(Event.seq).limit(_BATCH)).all()
        return status, [event_public(row) for row in rows]


def _position(last_event_id: str) -> int:
    """The seq a ``Last-Event-ID`` names: only what this stream sends (a seq) is accepted."""
    value = last_event_id.strip()
    if not value.isascii() or not value.isdigit() or int(value) > MAX_SEQ:
        raise InputError(f"Last-Event-ID {last_event_id[:40]!r} is not an event seq of this stream "
                         f"(a whole number from 0 to {MAX_SEQ}): reconnect with the last id received, or none")
    return int(value)


@router.get("/{mission_id}/events", response_class=EventSourceResponse, responses=_SSE_DOC)
async def stream_events(mission_id: str, request: Request, service: ServiceDep, caller: Reader,
                        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
                        after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Start after this seq.")] = 0,
                        ) -> EventSourceResponse:
    """Stream the mission's events in order, live; reconnect with Last-Event-ID to get exactly what was missed."""
    start = max(after, _position(last_event_id)) if last_event_id else after
    await run_in_threadpool(_check, service.url, caller, mission_id)
    poll_s = float(service.extras.get("sse_poll_s", 0.25))  # type: ignore[arg-type]

    async def stream() -> AsyncIterator[ServerSentEvent]:
        seq = start
        while True:
            status, events = await run_in_threadpool(_fetch, service.url, mission_id, seq)
            for event in events:
                seq = event["seq"]
                yield ServerSentEvent(data=json.dumps(event, ensure_ascii=False, default=str), event=event["kind"],
                                      id=str(event["seq"]))
            if len(events) == _BATCH:
                continue
            if status in TERMINAL:
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(poll_s)

    return EventSourceResponse(stream(), ping=int(service.extras.get("sse_ping_s", 15)))  # type: ignore[arg-type]
