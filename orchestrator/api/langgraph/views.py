"""How missions look to a LangGraph client: thread and run statuses, interrupts, states and threads as JSON."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from orchestrator.db.missions import MissionStatus
from orchestrator.db.models import Mission, Thread
from orchestrator.views import iso

__all__ = ["ThreadStatus", "RunStatus", "thread_status", "run_status", "statuses_of", "jsonable", "interrupt_id",
           "human_interrupt", "thread_view", "state_view", "empty_state", "GRAPH_ID", "ASSISTANT_ID"]

GRAPH_ID = "ml-engineering"
"""The graph's name in ``langgraph.json``; clients may use it as the assistant id."""
ASSISTANT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, GRAPH_ID))
"""The one assistant, the graph's default one: named as ``langgraph dev`` names a graph's default assistant."""

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]

_THREAD_STATUS: dict[str, ThreadStatus] = {"queued": "busy", "running": "busy", "waiting_approval": "interrupted",
                                           "failed": "error", "blocked": "error"}
"""Everything else (completed, completed_with_risks, rejected, cancelled, no mission yet) is ``idle``."""
_RUN_STATUS: dict[str, RunStatus] = {"queued": "pending", "running": "running", "failed": "error",
                                     "blocked": "error", "cancelled": "interrupted"}
"""How a run that stopped at this mission status ended; a gate (``waiting_approval``) and every other outcome
is ``success``: the graph did what it should, and the thread says it is interrupted."""


def thread_status(mission_status: str | None) -> ThreadStatus:
    return _THREAD_STATUS.get(mission_status or "", "idle")


def run_status(mission_status: str) -> RunStatus:
    return _RUN_STATUS.get(mission_status, "success")


def statuses_of(status: ThreadStatus) -> tuple[list[str], bool]:
    """The mission statuses a thread status stands for, and whether threads without a mission count."""
    known = MissionStatus.__args__  # type: ignore[attr-defined]
    return [s for s in known if thread_status(s) == status], status == "idle"


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):  # LangChain messages among them: their dict form, as LangGraph sends it
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def jsonable(value: Any) -> Any:
    """Graph state (or anything in it) as plain JSON values."""
    return json.loads(json.dumps(value, default=_default, ensure_ascii=False))


def interrupt_id(approval_id: int) -> str:
    """The interrupt a gate raised, as clients name it when they resume it."""
    return f"approval-{approval_id}"


def human_interrupt(gate: dict[str, Any]) -> dict[str, Any]:
    """A gate (``approval.requested``'s payload, or the value the graph interrupted with) as an interrupt whose
    value is an Agent Inbox ``HumanInterrupt`` list: the question, the exact payload and its SHA-256.

    Accepting must quote the hash (an ``accept`` of this action request does); editing the payload is not
    offered, since an approval is bound to the payload a person saw.
    """
    sha = gate.get("payload_sha256", "")
    question = str(gate.get("question", ""))
    request = {"action": f"approve_{gate.get('kind', 'gate')}",
               "args": {"approval_id": gate.get("approval_id"), "question": question,
                        "payload": gate.get("payload"), "payload_sha256": sha}}
    description = (f"{question}\n\nPayload SHA-256: `{sha}`. Resume with `{{\"decision\": \"approve\", \"reject\" or "
                   f"\"request_changes\", \"payload_sha256\": \"{sha}\", \"comment\": \"...\"}}`.")
    return {"value": [{"action_request": request, "description": description,
                       "config": {"allow_accept": True, "allow_respond": True, "allow_edit": False,
                                  "allow_ignore": False}}],
            "id": interrupt_id(int(gate.get("approval_id") or 0))}


def _checkpoint(thread_id: str, config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    conf = config.get("configurable", {})
    return {"thread_id": thread_id, "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": conf.get("checkpoint_id"), "checkpoint_map": conf.get("checkpoint_map")}


def state_view(thread_id: str, snapshot: Any) -> dict[str, Any]:
    """A ``StateSnapshot`` of the mission's graph as the ``ThreadState`` a client reads."""
    tasks = [{"id": task.id, "name": task.name, "error": None if task.error is None else str(task.error),
              "interrupts": [human_interrupt(i.value) for i in task.interrupts if isinstance(i.value, dict)],
              "checkpoint": None, "state": None, "result": jsonable(task.result) if task.result else None}
             for task in snapshot.tasks]
    return {"values": jsonable(snapshot.values), "next": list(snapshot.next),
            "checkpoint": _checkpoint(thread_id, snapshot.config),
            "metadata": jsonable(snapshot.metadata or {}), "created_at": snapshot.created_at,
            "parent_checkpoint": _checkpoint(thread_id, snapshot.parent_config), "tasks": tasks,
            "interrupts": [i for task in tasks for i in task["interrupts"]]}


def empty_state(thread_id: str) -> dict[str, Any]:
    """The state of a thread whose mission has not started: nothing yet."""
    return {"values": {}, "next": [], "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "",
                                                      "checkpoint_id": None, "checkpoint_map": None},
            "metadata": {}, "created_at": None, "parent_checkpoint": None, "tasks": [], "interrupts": []}


def thread_view(thread: Thread, mission: Mission | None, state: dict[str, Any] | None) -> dict[str, Any]:
    """The ``Thread`` a client reads: its metadata (with the graph and the mission), status, values, interrupts."""
    meta = {**(thread.meta or {}), "graph_id": GRAPH_ID, "assistant_id": ASSISTANT_ID}
    if mission is not None:
        meta["mission_id"] = mission.id
    updated = max(filter(None, (thread.updated_at, mission.updated_at if mission else None)))
    interrupts: dict[str, list[dict[str, Any]]] = {}
    for task in (state or {}).get("tasks", []):
        if task["interrupts"]:
            interrupts[task["id"]] = task["interrupts"]
    view = {"thread_id": thread.thread_id, "created_at": iso(thread.created_at), "updated_at": iso(updated),
            "metadata": meta, "status": thread_status(mission.status if mission else None),
            "values": (state or {}).get("values") or None, "interrupts": interrupts, "config": {}}
    if mission is not None and mission.error:
        view["error"] = mission.error
    return view
