"""Read models: the mission as the CLI's ``--json``, the API and the web page show it, from the records."""

from __future__ import annotations

import json
from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table

from orchestrator.audit import verify_chain
from orchestrator.context import RunContext
from orchestrator.db.artifacts import task_dict
from orchestrator.db.direct import Statement, Writer
from orchestrator.db.models import Approval, Artifact, Delegation, Mission, Step, Task, ToolCall
from orchestrator.errors import MissionNotFound
from orchestrator.procedure import PROCEDURE

__all__ = ["mission_view", "mission_row", "report_checks", "step_view", "delegation_view", "approval_view", "artifact_view", "release_payload",
           "iso"]


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def step_view(row: Step) -> dict[str, Any]:
    duration = None
    if row.started_at and row.finished_at:
        duration = round((row.finished_at - row.started_at).total_seconds(), 3)
    return {"name": row.name, "title": PROCEDURE.step(row.name).title, "status": row.status, "reason": row.reason,
            "rounds": row.rounds, "summary": row.summary, "started_at": iso(row.started_at), "finished_at": iso(row.finished_at), "duration_s": duration}


def delegation_view(row: Delegation) -> dict[str, Any]:
    return {"id": row.id, "from_agent": row.from_agent, "to_agent": row.to_agent, "step": row.step,
            "reason": row.reason, "status": row.status, "brief": row.brief, "result": row.result,
            "started_at": iso(row.started_at), "finished_at": iso(row.finished_at), "duration_ms": row.duration_ms,
            "input_tokens": row.input_tokens, "output_tokens": row.output_tokens, "cost_usd": row.cost_usd,
            "from_sha256": row.from_sha256, "to_sha256": row.to_sha256, "checkpoint_id": row.checkpoint_id}


def approval_view(row: Approval) -> dict[str, Any]:
    return {"id": row.id, "mission_id": row.mission_id, "kind": row.kind, "step": row.step, "agent": row.agent,
            "question": row.question, "payload": row.payload, "payload_sha256": row.payload_sha256,
            "status": row.status, "decided_by": row.decided_by, "decided_at": iso(row.decided_at),
            "comment": row.comment, "created_at": iso(row.created_at)}


def artifact_view(row: Artifact) -> dict[str, Any]:
    return {"path": row.path, "sha256": row.sha256, "size": row.size, "kind": row.kind, "agent": row.agent,
            "step": row.step, "created_at": iso(row.created_at)}


class _Rows:
    """Every column of one table's rows for a mission, as named tuples, in one direct statement: a view reads
    seven tables, and through the ORM each read cost more than the rest of the request."""

    def __init__(self, table: Table, *, where: str = "mission_id = :mission_id", order: str = "id",
                 params: dict[str, str] | None = None) -> None:
        columns = tuple(column.name for column in table.columns)
        self.row = namedtuple(f"{table.name}_row", columns)  # type: ignore[misc]  # noqa: PYI024
        self.statement = Statement(f"SELECT {', '.join(columns)} FROM {table.name} WHERE {where} ORDER BY {order}",
                                   table, returns=columns, params=params)

    def __call__(self, session: Writer, mission_id: str) -> list[Any]:
        return [self.row(*values) for values in self.statement.run(session, {"mission_id": mission_id})]


_MISSION = _Rows(Mission.__table__, where="id = :mission_id", params={"mission_id": "id"})
_STEPS = _Rows(Step.__table__, order="position")
_DELEGATIONS = _Rows(Delegation.__table__)
_APPROVALS = _Rows(Approval.__table__)
_ARTIFACTS = _Rows(Artifact.__table__, order="path")
_TASKS = _Rows(Task.__table__)
_REPORT = Statement("SELECT result FROM tool_calls WHERE mission_id = :mission_id AND tool = 'write_mission_report' "
                    "AND status = 'ok' ORDER BY id DESC LIMIT 1", ToolCall.__table__, returns=("result",))


def mission_row(session: Writer, mission_id: str) -> Any:
    """The mission's row (every column, by name), or :class:`MissionNotFound`."""
    found = _MISSION(session, mission_id)
    if not found:
        raise MissionNotFound(f"no mission with id {mission_id!r} (see `orchestrator missions list`)")
    return found[0]


def mission_view(session: Writer, mission_id: str, *, with_audit: bool = True, mission: Any = None) -> dict[str, Any]:
    """The stable JSON of a mission: ``id, status, steps, delegations, approvals, artifacts`` and more.

    ``mission``: its row (or model) when the caller read it already in this transaction. The audit verdict is
    reused while nothing it rests on changed (:func:`~orchestrator.audit.verify_chain` with ``reuse``)."""
    mission = mission if mission is not None else mission_row(session, mission_id)
    approvals = _APPROVALS(session, mission_id)
    view: dict[str, Any] = {
        "id": mission.id, "status": mission.status, "reason": mission.error, "current_step": mission.current_step,
        "error": mission.error,
        "text": mission.text, "spec": mission.spec, "workspace": mission.workspace, "owner": mission.owner,
        "model": mission.model, "created_at": iso(mission.created_at), "updated_at": iso(mission.updated_at),
        "parent_id": mission.parent_id,
        "steps": [step_view(s) for s in _STEPS(session, mission_id)],
        "delegations": [delegation_view(d) for d in _DELEGATIONS(session, mission_id)],
        "approvals": [approval_view(a) for a in approvals],
        "artifacts": [artifact_view(a) for a in _ARTIFACTS(session, mission_id)],
        "tasks": [task_dict(t) for t in _TASKS(session, mission_id)],
    }
    view["checks"] = report_checks(session, mission_id)
    if with_audit:
        report = verify_chain(session, mission_id, reuse=True, mission=mission, approvals=approvals)
        view["audit"] = {"intact": report.intact, "events": report.events, "head": report.head,
                         "first_bad_seq": report.first_bad_seq, "reason": report.reason}
    return view


def report_checks(session: Writer, mission_id: str) -> list[dict[str, Any]]:
    """The checks of the mission report as its tool recorded them (the latest report), for every view."""
    found = _REPORT.run(session, {"mission_id": mission_id})
    result = found[0][0] if found else None
    try:
        rows = json.loads(result).get("rows") if result else None
    except (ValueError, AttributeError):
        return []
    return [{"name": str(r.get("name")), "status": "pass" if r.get("status") == "pass" else "fail",
             "detail": str(r.get("detail", ""))} for r in rows or [] if isinstance(r, dict)]


_RELEASE_PLAN = Statement("SELECT summary FROM steps WHERE mission_id = :mission_id AND name = 'release'",
                          Step.__table__, returns=("summary",))
_SHIPPED = Statement("SELECT path, sha256, kind FROM artifacts WHERE mission_id = :mission_id ORDER BY path",
                     Artifact.__table__, returns=("path", "sha256", "kind"))
_SHIPPED_KINDS = ("model", "registry", "manifest", "doc", "schedule", "ci", "pipeline", "container")


_STEP_OUTCOMES = Statement("SELECT name, status, reason FROM steps WHERE mission_id = :mission_id ORDER BY position",
                           Step.__table__, returns=("name", "status", "reason"))
_CAPACITY = Statement("SELECT result FROM tool_calls WHERE mission_id = :mission_id AND tool = 'estimate_capacity' "
                      "AND status = 'ok' ORDER BY id DESC LIMIT 1", ToolCall.__table__, returns=("result",))


def _capacity(session: Writer, mission_id: str) -> dict[str, Any] | None:
    rows = _CAPACITY.run(session, {"mission_id": mission_id})
    try:
        found = json.loads(rows[0][0]) if rows else None
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {key: found.get(key) for key in ("verdict", "fits", "workers", "memory_request_mb", "cost", "budget")
            if key in found}


def release_payload(session: Writer, run: RunContext) -> dict[str, Any]:
    """What a person approves at the release gate: the release plan, the figures it rests on (capacity and
    cost as measured, each step's outcome) and the files that ship."""
    plan = _RELEASE_PLAN.run(session, {"mission_id": run.mission_id})
    artifacts = _SHIPPED.run(session, {"mission_id": run.mission_id})
    shipped = [{"path": path, "sha256": sha, "kind": kind} for path, sha, kind in artifacts if kind in _SHIPPED_KINDS]
    steps = [{"name": name, "status": status, "reason": reason}
             for name, status, reason in _STEP_OUTCOMES.run(session, {"mission_id": run.mission_id})
             if name != "report"]
    return {"mission": run.mission.objective, "plan": (plan[0][0] if plan else None) or "",
            "capacity": _capacity(session, run.mission_id), "steps": steps, "artifacts": shipped}
