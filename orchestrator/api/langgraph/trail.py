"""A mission's trail read as LangGraph runs and stream parts.

A run is a stretch of the trail: the first starts with the mission, each later one right after the previous
one stopped, and it stops at the mission status that ends a drive of the graph (a gate, or the end). Runs
are therefore not stored anywhere: their ids, statuses and events are read off the events table, which is
also what every stream mode is made of.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.api.langgraph.views import ASSISTANT_ID, GRAPH_ID, human_interrupt
from orchestrator.db.missions import TERMINAL
from orchestrator.db.models import Event

__all__ = ["STREAM_MODES", "RunRecord", "runs_of", "run_id_for", "stop_status", "Translator", "Cursor"]

STREAM_MODES = ("values", "updates", "messages", "messages-tuple", "events", "custom")
"""The stream modes the trail can honestly produce; others (debug, tasks, checkpoints...) produce nothing."""
STOPS = frozenset(TERMINAL | {"waiting_approval"})
_RUNS = uuid.UUID("0f4a1f5e-8a57-4c55-9a57-5b4d1c0de4a1")
_ERRORS = {"failed": "MissionFailed", "blocked": "MissionBlocked"}


def run_id_for(mission_id: str, ordinal: int) -> str:
    """The id of the mission's ``ordinal``-th run (from 1): the same on every server, after every restart."""
    return str(uuid.uuid5(_RUNS, f"{mission_id}:{ordinal}"))


def stop_status(kind: str, payload: dict[str, Any]) -> str | None:
    """The mission status this event stops a run at, or None."""
    status = payload.get("status") if kind == "mission.status" else None
    return status if status in STOPS else None


@dataclass(frozen=True)
class RunRecord:
    """One run of a thread, as the trail records it."""

    run_id: str
    ordinal: int
    start_seq: int
    """Seq of the run's first event."""
    stop_seq: int | None
    """Seq of the status event it stopped at; None while it goes on."""
    stop_status: str | None
    created_at: datetime
    updated_at: datetime


def runs_of(session: Session, mission_id: str) -> list[RunRecord]:
    """The mission's runs, oldest first (none before its first event)."""
    statuses = session.execute(select(Event.seq, Event.ts, Event.payload).where(
        Event.mission_id == mission_id, Event.kind == "mission.status").order_by(Event.seq)).all()
    last = session.execute(select(func.max(Event.seq), func.max(Event.ts)).where(Event.mission_id == mission_id)).one()
    if last[0] is None:
        return []
    stops = [(seq, ts, payload["status"]) for seq, ts, payload in statuses if payload.get("status") in STOPS]
    starts = [1, *(seq + 1 for seq, _, _ in stops)]
    if starts[-1] > last[0]:  # nothing after the last stop: no run goes on
        starts.pop()
    started = dict(session.execute(select(Event.seq, Event.ts).where(Event.mission_id == mission_id,
                                                                     Event.seq.in_(starts))).all())
    runs = []
    for ordinal, start in enumerate(starts, 1):
        stop = stops[ordinal - 1] if ordinal <= len(stops) else None
        runs.append(RunRecord(run_id=run_id_for(mission_id, ordinal), ordinal=ordinal, start_seq=start,
                              stop_seq=stop[0] if stop else None, stop_status=stop[2] if stop else None,
                              created_at=started.get(start) or last[1], updated_at=stop[1] if stop else last[1]))
    return runs


@dataclass(frozen=True)
class Cursor:
    """Where a stream is: every part up to and including part ``index`` of event ``seq`` was sent.

    SSE ids are ``seq-index`` (one event can make several parts); a reconnecting client sends the last one.
    """

    seq: int
    index: int = 1_000_000

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        seq, _, index = (value or "").strip().partition("-")
        if not seq.isdigit() or (index and not index.isdigit()):
            return None
        return cls(int(seq), int(index)) if index else cls(int(seq))

    def sent(self, seq: int, index: int) -> bool:
        return seq < self.seq or (seq == self.seq and index <= self.index)


class Translator:
    """Turns trail events (``event_public`` dicts) into the parts of the requested stream modes."""

    def __init__(self, *, modes: tuple[str, ...], thread_id: str, run_id: str, nodes: frozenset[str],
                 values: Callable[[], dict[str, Any]]) -> None:
        self.modes, self.thread_id, self.run_id, self.nodes = modes, thread_id, run_id, nodes
        self._values = values
        self.gate_names: dict[int, str] = {}
        """Each approval's gate, as its key names it (``release``, ``review``, ``tool``); the reader fills it."""
        self._meta = {"thread_id": thread_id, "run_id": run_id, "graph_id": GRAPH_ID, "assistant_id": ASSISTANT_ID}

    def parts(self, event: dict[str, Any], *, error: str | None = None) -> list[tuple[str, Any]]:
        """The parts one event makes, in order; ``error`` is the mission's error when the event ends it."""
        out: list[tuple[str, Any]] = []
        kind, payload, node = event["kind"], event["payload"] or {}, self.node_of(event)
        stopped = stop_status(kind, payload)
        if "updates" in self.modes and (update := self._update(event, node)) is not None:
            out.append(("updates", update))
        if "values" in self.modes and (kind in ("step.finished", "handoff.finished", "approval.requested")
                                       or stopped):
            values = dict(self._values())
            if kind == "approval.requested":
                values["__interrupt__"] = [human_interrupt(payload)]
            out.append(("values", values))
        if kind == "message" and ("messages-tuple" in self.modes or "messages" in self.modes):
            message = self._message(event)
            meta = {**self._meta, "langgraph_node": node, "agent": event["agent"], "step": event["step"],
                    "delegation_id": event["delegation_id"]}
            if "messages-tuple" in self.modes:
                out.append(("messages", [message, meta]))
            if "messages" in self.modes:
                out += [("messages/metadata", {message["id"]: {"metadata": meta}}), ("messages/complete", [message])]
        if "events" in self.modes:
            out.append(("events", self._event(event, node)))
        if "custom" in self.modes:
            out.append(("custom", event))
        if stopped in _ERRORS:
            out.append(("error", {"error": _ERRORS[stopped], "message": error or payload.get("error") or stopped}))
        return out

    def node_of(self, event: dict[str, Any]) -> str | None:
        """The graph node the event happened in (None for the mission's own status events)."""
        kind, payload = event["kind"], event["payload"] or {}
        if kind.startswith("mission."):
            return None
        if kind == "handoff.started":
            return payload.get("to")
        if kind.startswith("approval."):
            gate = self.gate_names.get(payload.get("approval_id")) or str(payload.get("kind", ""))  # type: ignore[arg-type]
            for name in (f"{gate}_gate", gate):  # the release gate's node, the review node; a tool's gate: its step
                if gate and name in self.nodes:
                    return name
        if event["agent"] in self.nodes and event["delegation_id"] is not None:
            return event["agent"]
        return event["step"]

    def _update(self, event: dict[str, Any], node: str | None) -> dict[str, Any] | None:
        kind, payload = event["kind"], event["payload"] or {}
        if kind == "approval.requested":
            return {"__interrupt__": [human_interrupt(payload)]}
        if node is None:
            return None
        if kind in ("step.finished", "step.settled"):  # settled: the step's outcome, decided at a gate
            return {node: {"step": event["step"], **payload}}
        if kind == "handoff.finished":
            return {node: {"delegation_id": event["delegation_id"], "step": event["step"], "to": payload.get("to"),
                           "status": payload.get("status"), "result": payload.get("result")}}
        if kind == "approval.decided":
            return {node: {"approval_id": payload.get("approval_id"), "decision": payload.get("decision"),
                           "decided_by": event["agent"], "comment": payload.get("comment")}}
        return None

    def _message(self, event: dict[str, Any]) -> dict[str, Any]:
        payload = event["payload"] or {}
        return {"type": "ai", "id": f"msg-{event['mission_id']}-{event['seq']}", "name": event["agent"],
                "content": payload.get("text", ""), "tool_calls": [], "invalid_tool_calls": [],
                "additional_kwargs": {}, "response_metadata": {"tool_names": payload.get("tool_calls", [])}}

    def _event(self, event: dict[str, Any], node: str | None) -> dict[str, Any]:
        kind, payload = event["kind"], event["payload"] or {}
        name, what, data = kind, "on_custom_event", dict(payload)
        if kind in ("step.started", "handoff.started"):
            name, what, data = node or kind, "on_chain_start", {"input": payload}
        elif kind in ("step.finished", "handoff.finished"):
            name, what, data = node or kind, "on_chain_end", {"output": payload}
        elif kind == "tool.called":
            name, what = str(payload.get("tool", kind)), "on_tool_end"
            data = {"input": payload.get("args"), "output": payload.get("result_preview")}
        elif kind == "message":
            name, what, data = event["agent"], "on_chat_model_end", {"output": self._message(event)}
        return {"event": what, "name": name, "run_id": f"{self.run_id}:{event['seq']}", "tags": [],
                "metadata": {**self._meta, "langgraph_node": node, "kind": kind, "seq": event["seq"]},
                "data": data, "parent_ids": []}
