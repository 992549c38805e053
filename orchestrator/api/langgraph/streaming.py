"""Following a run on the trail, as routers/events.py follows a mission: polled from the database, so every
client (and every server process) sees the same events in the same order, and a reconnection with the last
SSE id gets exactly what it missed.

Stream parts carry LangGraph's event names (``metadata`` first, then the modes' parts, ``error`` when the
mission failed, ``end`` last) and ``seq-index`` ids. ``values`` parts are the graph's checkpointed state when
the part is sent; every other part is made from the trail alone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from orchestrator.api.deps import Service
from orchestrator.api.langgraph.trail import STOPS, Cursor, RunRecord, Translator, stop_status
from orchestrator.api.langgraph.views import human_interrupt, jsonable, state_view
from orchestrator.api.routers.mission_actions import event_public
from orchestrator.db import session_scope
from orchestrator.db.approvals import pending_approvals
from orchestrator.db.missions import get_mission
from orchestrator.db.models import Approval, Event

__all__ = ["follow", "wait_body", "read_state", "final_values", "stop_of"]

_BATCH = 200
_KEEPALIVE_S = 10.0


def _config(mission_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": mission_id}}


def read_state(service: Service, thread_id: str, mission_id: str) -> dict[str, Any]:
    """The thread's state: the mission graph's latest checkpoint, as a ``ThreadState``."""
    return state_view(thread_id, service.runner.graph.get_state(_config(mission_id)))


def _read_values(service: Service, mission_id: str) -> dict[str, Any]:
    return jsonable(service.runner.graph.get_state(_config(mission_id)).values)


class _Values:
    """The state's values, read at most once per batch of parts (reset between batches)."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read, self._cached = read, None

    def __call__(self) -> dict[str, Any]:
        if self._cached is None:
            self._cached = self._read()
        return self._cached

    def reset(self) -> None:
        self._cached = None


def _next_parts(service: Service, translator: Translator, values: _Values, mission_id: str, position: Cursor,
                start_seq: int) -> tuple[list[tuple[int, int, str, Any]], bool]:
    """The parts after ``position`` (one batch), and whether the run's stop was among them."""
    values.reset()
    with session_scope(service.url, readonly=True) as session:
        rows = session.scalars(select(Event).where(Event.mission_id == mission_id,
                                                   Event.seq >= max(position.seq, start_seq))
                               .order_by(Event.seq).limit(_BATCH)).all()
        events = [event_public(row) for row in rows]
        gates = {e["payload"].get("approval_id") for e in events if e["kind"].startswith("approval.")}
        if unknown := {g for g in gates if isinstance(g, int)} - translator.gate_names.keys():
            rows = session.execute(select(Approval.id, Approval.key).where(Approval.id.in_(unknown))).all()
            translator.gate_names.update({row.id: row.key.split(":", 1)[0] for row in rows})
    out: list[tuple[int, int, str, Any]] = []
    for event in events:
        for index, (name, data) in enumerate(translator.parts(event)):
            if not position.sent(event["seq"], index):
                out.append((event["seq"], index, name, data))
        if stop_status(event["kind"], event["payload"] or {}):
            return out, True
    return out, False


def _sse(name: str, data: Any, event_id: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False, default=str), event=name, id=event_id)


async def follow(service: Service, request: Request, *, thread_id: str, mission_id: str, run: RunRecord,
                 modes: tuple[str, ...], last_event_id: str | None,
                 idle_modes: list[str] | None = None) -> AsyncIterator[ServerSentEvent]:
    """The run's parts from its start (or after ``last_event_id``) until it stops, then ``end``;
    ``idle_modes``: requested modes the trail cannot make, named in the metadata part."""
    cursor = Cursor.parse(last_event_id)
    position = cursor if cursor is not None and cursor.seq >= run.start_seq else Cursor(run.start_seq - 1)
    if cursor is None:
        metadata = {"run_id": run.run_id, "thread_id": thread_id, "attempt": 1}
        if idle_modes:
            metadata["unsupported_stream_modes"] = idle_modes
        yield _sse("metadata", metadata)
    if run.stop_seq is not None and position.seq > run.stop_seq:  # the client had every part of it
        yield _sse("end", None)
        return
    nodes = frozenset(service.runner.graph.nodes)
    values = _Values(lambda: _read_values(service, mission_id))
    translator = Translator(modes=modes, thread_id=thread_id, run_id=run.run_id, nodes=nodes, values=values)
    poll_s = float(service.extras.get("sse_poll_s", 0.25))  # type: ignore[arg-type]
    while True:
        parts, stopped = await run_in_threadpool(_next_parts, service, translator, values, mission_id, position,
                                                 run.start_seq)
        for seq, index, name, data in parts:
            position = Cursor(seq, index)
            yield _sse(name, data, f"{seq}-{index}")
        if stopped:
            yield _sse("end", None)
            return
        if len(parts) < _BATCH:
            if await request.is_disconnected():
                return
            await asyncio.sleep(poll_s)


def stop_of(service: Service, mission_id: str, start_seq: int) -> str | None:
    """The status the run that started at ``start_seq`` stopped at, or None while it goes on."""
    with session_scope(service.url, readonly=True) as session:
        payloads = session.scalars(select(Event.payload).where(
            Event.mission_id == mission_id, Event.kind == "mission.status", Event.seq >= start_seq)
            .order_by(Event.seq)).all()
    return next((p["status"] for p in payloads if p.get("status") in STOPS), None)


def final_values(service: Service, mission_id: str, stopped: str | None) -> dict[str, Any]:
    """The state's values at a run's end, with the pending gates as ``__interrupt__`` and a failure as
    ``__error__`` (which ``langgraph-sdk``'s ``runs.wait`` raises)."""
    values = _read_values(service, mission_id)
    if stopped == "waiting_approval":
        with session_scope(service.url, readonly=True) as session:
            rows = pending_approvals(session, mission_id=mission_id)
            gates = [{"approval_id": row.id, "kind": row.kind, "question": row.question, "payload": row.payload,
                      "payload_sha256": row.payload_sha256} for row in rows]
        values["__interrupt__"] = [human_interrupt(gate) for gate in gates]
    if stopped in ("failed", "blocked"):
        with session_scope(service.url, readonly=True) as session:
            error = get_mission(session, mission_id).error
        values["__error__"] = {"error": f"Mission{stopped.capitalize()}", "message": error or stopped}
    return values


async def wait_body(service: Service, request: Request, *, mission_id: str, run: RunRecord) -> AsyncIterator[bytes]:
    """The run's final values once it stops; a newline now and then until then keeps proxies from closing an
    idle response (JSON allows leading whitespace)."""
    poll_s = float(service.extras.get("sse_poll_s", 0.25))  # type: ignore[arg-type]
    last_sent = time.monotonic()
    while (stopped := await run_in_threadpool(stop_of, service, mission_id, run.start_seq)) is None:
        if await request.is_disconnected():
            return
        if time.monotonic() - last_sent > _KEEPALIVE_S:
            last_sent = time.monotonic()
            yield b"\n"
        await asyncio.sleep(poll_s)
    body = await run_in_threadpool(final_values, service, mission_id, stopped)
    yield json.dumps(body, ensure_ascii=False, default=str).encode()
