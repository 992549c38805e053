"""Runs: start one (the mission, or a decision on its gate), follow it as SSE, wait for it, join it, cancel it.

Every run goes to the same runner and worker pool as ``/api/v1`` missions; its parts are read off the trail.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from orchestrator.api.deps import Actor, CallerDep, Reader, Service, ServiceDep
from orchestrator.api.keys import Caller
from orchestrator.api.langgraph.launch import Started, start_run, visible_thread
from orchestrator.api.langgraph.schemas import RunCreate, StreamModes
from orchestrator.api.langgraph.streaming import follow, wait_body
from orchestrator.api.langgraph.trail import STREAM_MODES, RunRecord, runs_of
from orchestrator.api.langgraph.views import ASSISTANT_ID, run_status
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.db import session_scope
from orchestrator.db.missions import TERMINAL
from orchestrator.db.models import Mission
from orchestrator.errors import InputError, InvalidTransition, MissionNotFound
from orchestrator.views import iso

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["langgraph: runs"], responses=PROBLEM_RESPONSES)
_SDK_MODES = frozenset({"debug", "tasks", "checkpoints", "tools", "lifecycle"})
"""Modes ``langgraph-sdk`` knows that the trail cannot make: accepted, and named in the metadata part."""
_SSE_DOC = {200: {"description": "LangGraph stream parts: `metadata` first, the modes' parts (`id` = seq-index), "
                                 "`error` when the mission failed, `end` last.",
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}}
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)]


def _modes(requested: StreamModes | list[str] | None, default: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """The modes to make, and the requested ones that make nothing here."""
    asked = [requested] if isinstance(requested, str) else [m for m in requested or [] if m]
    unknown = [m for m in asked if m not in STREAM_MODES and m not in _SDK_MODES]
    if unknown:
        raise InputError(f"stream mode {unknown[0]!r} is not one of {', '.join(STREAM_MODES)}")
    made = tuple(dict.fromkeys(m for m in asked if m in STREAM_MODES)) or (default if not asked else ())
    return made, [m for m in asked if m in _SDK_MODES]


def run_view(thread_id: str, run: RunRecord, mission_status: str, mission_id: str) -> dict[str, Any]:
    if run.stop_status is not None:
        status = run_status(run.stop_status)
    else:
        status = "running" if mission_status == "running" else "pending"
    return {"run_id": run.run_id, "thread_id": thread_id, "assistant_id": ASSISTANT_ID,
            "created_at": iso(run.created_at), "updated_at": iso(run.updated_at), "status": status,
            "metadata": {"mission_id": mission_id, "run": run.ordinal}, "multitask_strategy": "reject", "kwargs": {}}


def _run_of(service: Service, caller: Caller, thread_id: str, run_id: str | None) -> tuple[str, str, RunRecord]:
    """(mission id, mission status, the run): the given run, or the thread's latest."""
    with session_scope(service.url, readonly=True) as session:
        thread = visible_thread(session, caller, thread_id)
        if thread.mission_id is None:
            raise MissionNotFound(f"thread {thread_id} has no runs yet")
        mission = session.get(Mission, thread.mission_id)
        runs = runs_of(session, thread.mission_id)
    assert mission is not None
    found = [r for r in runs if r.run_id == run_id] if run_id is not None else runs[-1:]
    if not found:
        raise MissionNotFound(f"thread {thread_id} has no run {run_id!r}")
    return mission.id, mission.status, found[0]


def _headers(started_thread: str, run: RunRecord, tail: str = "") -> dict[str, str]:
    base = f"/threads/{started_thread}/runs/{run.run_id}"
    return {"Content-Location": base, "Location": base + tail}


async def _guarded(parts: AsyncIterator[ServerSentEvent]) -> AsyncIterator[ServerSentEvent]:
    """A failure after the response started cannot be a problem+json any more: it becomes an ``error`` part."""
    try:
        async for part in parts:
            yield part
    except Exception:
        log.exception("a LangGraph run stream failed")
        yield ServerSentEvent(event="error", data='{"error": "InternalError", "message": "internal error; the '
                                                  'operator can find it in the server log"}')
        yield ServerSentEvent(event="end", data="null")


def _stream(service: Service, request: Request, *, thread_id: str, mission_id: str, run: RunRecord,
            modes: tuple[str, ...], idle: list[str], last_event_id: str | None,
            headers: dict[str, str]) -> EventSourceResponse:
    parts = follow(service, request, thread_id=thread_id, mission_id=mission_id, run=run, modes=modes,
                   last_event_id=last_event_id, idle_modes=idle)
    ping = int(service.extras.get("sse_ping_s", 15))  # type: ignore[arg-type]
    return EventSourceResponse(_guarded(parts), ping=ping, headers=headers)


async def _start(service: Service, caller: Caller, thread_id: str | None, body: RunCreate) -> Started:
    return await run_in_threadpool(start_run, service, caller, thread_id, body)


@router.post("/threads/{thread_id}/runs/stream", response_class=EventSourceResponse, responses=_SSE_DOC)
async def stream_run(thread_id: str, body: RunCreate, request: Request, service: ServiceDep, caller: CallerDep,
                     last_event_id: LastEventId = None) -> EventSourceResponse:
    """Start a run (the mission as input, or command.resume with a decision) and stream it until it stops."""
    return await _stream_new(service, request, caller, thread_id, body, last_event_id)


@router.post("/runs/stream", response_class=EventSourceResponse, responses=_SSE_DOC)
async def stream_threadless_run(body: RunCreate, request: Request, service: ServiceDep,
                                caller: CallerDep) -> EventSourceResponse:
    """Start a mission on a new thread and stream it until it stops."""
    return await _stream_new(service, request, caller, None, body, None)


async def _stream_new(service: Service, request: Request, caller: Caller, thread_id: str | None, body: RunCreate,
                      last_event_id: str | None) -> EventSourceResponse:
    modes, idle = _modes(body.stream_mode, ("values",))
    started = await _start(service, caller, thread_id, body)
    query = urlencode([("stream_mode", m) for m in (*modes, *idle)])
    headers = _headers(started.thread_id, started.run, f"/stream?{query}" if query else "/stream")
    return _stream(service, request, thread_id=started.thread_id, mission_id=started.mission_id, run=started.run,
                   modes=modes, idle=idle, last_event_id=last_event_id, headers=headers)


async def _wait_new(service: Service, request: Request, caller: Caller, thread_id: str | None,
                    body: RunCreate) -> StreamingResponse:
    started = await _start(service, caller, thread_id, body)
    return StreamingResponse(wait_body(service, request, mission_id=started.mission_id, run=started.run),
                             media_type="application/json", headers=_headers(started.thread_id, started.run, "/join"))


@router.post("/threads/{thread_id}/runs/wait", response_model=dict[str, Any])
async def wait_run(thread_id: str, body: RunCreate, request: Request, service: ServiceDep,
                   caller: CallerDep) -> StreamingResponse:
    """Start a run and answer with the state's values once it stops (``__interrupt__``: the pending gate)."""
    return await _wait_new(service, request, caller, thread_id, body)


@router.post("/runs/wait", response_model=dict[str, Any])
async def wait_threadless_run(body: RunCreate, request: Request, service: ServiceDep,
                              caller: CallerDep) -> StreamingResponse:
    """Start a mission on a new thread and answer with its values once it stops."""
    return await _wait_new(service, request, caller, None, body)


async def _background(service: Service, caller: Caller, thread_id: str | None, body: RunCreate,
                      response: Response) -> dict[str, Any]:
    started = await _start(service, caller, thread_id, body)
    response.headers["Content-Location"] = _headers(started.thread_id, started.run)["Content-Location"]
    return run_view(started.thread_id, started.run, "queued", started.mission_id)


@router.post("/threads/{thread_id}/runs", response_model=dict[str, Any])
async def create_run(thread_id: str, body: RunCreate, service: ServiceDep, caller: CallerDep,
                     response: Response) -> dict[str, Any]:
    """Start a run in the background; follow it with its stream or join it."""
    return await _background(service, caller, thread_id, body, response)


@router.post("/runs", response_model=dict[str, Any])
async def create_threadless_run(body: RunCreate, service: ServiceDep, caller: CallerDep,
                                response: Response) -> dict[str, Any]:
    """Start a mission on a new thread in the background."""
    return await _background(service, caller, None, body, response)


@router.get("/threads/{thread_id}/runs", response_model=list[dict[str, Any]])
def list_runs(thread_id: str, service: ServiceDep, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 10,
              offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
    """The thread's runs, newest first."""
    with session_scope(service.url, readonly=True) as session:
        thread = visible_thread(session, caller, thread_id)
        if thread.mission_id is None:
            return []
        mission = session.get(Mission, thread.mission_id)
        runs = runs_of(session, thread.mission_id)
    assert mission is not None
    return [run_view(thread_id, run, mission.status, mission.id) for run in reversed(runs)][offset:offset + limit]


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=dict[str, Any])
def read_run(thread_id: str, run_id: str, service: ServiceDep, caller: Reader) -> dict[str, Any]:
    """One run and its status."""
    mission_id, mission_status, run = _run_of(service, caller, thread_id, run_id)
    return run_view(thread_id, run, mission_status, mission_id)


@router.get("/threads/{thread_id}/runs/{run_id}/stream", response_class=EventSourceResponse, responses=_SSE_DOC)
async def join_run_stream(thread_id: str, run_id: str, request: Request, service: ServiceDep, caller: Reader,
                          stream_mode: Annotated[list[str] | None, Query(max_length=12)] = None,
                          last_event_id: LastEventId = None) -> EventSourceResponse:
    """Stream a run from its start (or after Last-Event-ID) until it stops: every client sees the same parts."""
    modes, idle = _modes(stream_mode, ("values", "updates"))
    mission_id, _, run = await run_in_threadpool(_run_of, service, caller, thread_id, run_id)
    return _stream(service, request, thread_id=thread_id, mission_id=mission_id, run=run, modes=modes, idle=idle,
                   last_event_id=last_event_id, headers={})


@router.get("/threads/{thread_id}/stream", response_class=EventSourceResponse, responses=_SSE_DOC)
async def join_thread_stream(thread_id: str, request: Request, service: ServiceDep, caller: Reader,
                             last_event_id: LastEventId = None) -> EventSourceResponse:
    """Stream the thread's latest run (values and updates) until it stops."""
    mission_id, _, run = await run_in_threadpool(_run_of, service, caller, thread_id, None)
    return _stream(service, request, thread_id=thread_id, mission_id=mission_id, run=run, modes=("values", "updates"),
                   idle=[], last_event_id=last_event_id, headers={})


@router.get("/threads/{thread_id}/runs/{run_id}/join", response_model=dict[str, Any])
async def join_run(thread_id: str, run_id: str, request: Request, service: ServiceDep,
                   caller: Reader) -> StreamingResponse:
    """Answer with the state's values once the run stops."""
    mission_id, _, run = await run_in_threadpool(_run_of, service, caller, thread_id, run_id)
    return StreamingResponse(wait_body(service, request, mission_id=mission_id, run=run), media_type="application/json")


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202, response_model=None)
def cancel_run(thread_id: str, run_id: str, service: ServiceDep, caller: Actor) -> None:
    """Cancel the run in progress: its mission stops after the current graph step and is cancelled."""
    mission_id, mission_status, run = _run_of(service, caller, thread_id, run_id)
    if run.stop_status is not None or mission_status in TERMINAL:
        raise InvalidTransition(f"run {run_id} already stopped ({run.stop_status or mission_status})")
    service.runner.cancel(mission_id, actor=caller.name)
