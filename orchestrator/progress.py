"""Live progress in the terminal, read from the audit trail while a mission runs (nothing unrecorded)."""

from __future__ import annotations

import threading
from typing import Any, TextIO

from sqlalchemy import select

from orchestrator.db import session_scope
from orchestrator.db.models import Event
from orchestrator.events import EventKind

__all__ = ["EventTail", "describe_event"]


def describe_event(kind: str, actor: str, step: str | None, payload: dict[str, Any]) -> str | None:
    """One human line for an event, or None for events not worth a line."""
    where = f"[{step}] " if step else ""
    why = f": {payload['reason']}" if payload.get("reason") else ""
    match kind:
        case EventKind.STEP_STARTED:
            return f"{where}step started (round {payload.get('round')})"
        case EventKind.STEP_FINISHED:
            return f"{where}step {payload.get('status')} in {payload.get('duration_s')} s{why}"[:300]
        case EventKind.STEP_SETTLED:
            return f"{where}step {payload.get('status')} (decided by {actor}){why}"[:300]
        case EventKind.HANDOFF_STARTED:
            return f"{where}{actor} -> {payload.get('to')}: {payload.get('brief', {}).get('task', '')[:110]}"
        case EventKind.HANDOFF_FINISHED:
            summary = (payload.get("result") or {}).get("summary", "")
            return f"{where}{actor} -> {payload.get('to')} ({payload.get('status')}): {summary[:110]}"
        case EventKind.TOOL_CALLED:
            again = f", attempt {payload['attempt']} after a crash" if payload.get("attempt") else ""
            return (f"{where}  {actor} · {payload.get('tool')} {payload.get('status')} "
                    f"({payload.get('duration_ms')} ms{again})")
        case EventKind.MESSAGE if payload.get("text") and not payload.get("tool_calls"):
            return f"{where}{actor}: {str(payload['text'])[:160]}"
        case EventKind.APPROVAL_REQUESTED:
            return f"{where}approval needed ({payload.get('kind')}): {payload.get('question')}"
        case EventKind.APPROVAL_DECIDED:
            decision = str(payload.get("decision", "")).replace("_", " ")
            return f"{where}approval {payload.get('approval_id')} {decision} by {actor}"
        case EventKind.MISSION_STATUS:
            return f"mission {payload.get('status')}" + (f": {payload['error']}" if payload.get("error") else "")
        case EventKind.MISSION_FORKED:
            return f"forked from mission {payload.get('parent_id')} at step {payload.get('from_step')}"
        case EventKind.RISK_ACCEPTED:
            return f"{where}risk accepted by {actor}: {str(payload.get('detail', ''))[:160]}"
    return None


class EventTail:
    """Polls the mission's events in a background thread and prints them as they are recorded."""

    def __init__(self, url: str, mission_id: str, out: TextIO, *, interval: float = 0.3) -> None:
        self.url, self.mission_id, self.out, self.interval = url, mission_id, out, interval
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> EventTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # progress is best effort; the records are what count
                pass

    def poll(self) -> None:
        with session_scope(self.url) as session:
            rows = session.execute(select(Event.seq, Event.kind, Event.actor, Event.step, Event.payload)
                                   .where(Event.mission_id == self.mission_id, Event.seq > self._seq)
                                   .order_by(Event.seq)).all()
        for row in rows:
            self._seq = row.seq
            line = describe_event(row.kind, row.actor, row.step, row.payload)
            if line:
                print(line, file=self.out, flush=True)
