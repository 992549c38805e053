"""Copies of a mission's records for another mission: its journal for a replay, its records up to a step for a
fork. Reads from one session, writes through another (the same database, or a scratch one)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.db.models import Approval, Delegation, Event, ModelTurn, Step, ToolCall

__all__ = ["JournalCopy", "read_journal", "write_journal", "read_decided_approvals", "write_approvals",
           "delegation_ids", "next_delegation_id", "trail", "copy_delegations", "read_delegations",
           "write_delegations", "steps_of"]

_SUB_SCOPE = re.compile(r"^(?P<agent>[^:]+):dlg(?P<id>\d+):(?P<turn>\d+)$")
"""A sub-agent's journal key: ``<agent>:dlg<delegation id>:<messages so far>``."""


class JournalCopy:
    """A mission's model turns and tool calls, as plain rows."""

    def __init__(self, turns: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
        self.turns, self.calls = turns, calls


def _columns(row: Any, *, skip: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in skip}


def _with_id(row: Any) -> dict[str, Any]:
    return _columns(row, skip=())


def read_journal(session: Session, *, mission_id: str, delegations: set[int] | None = None,
                 steps: set[str] | None = None) -> JournalCopy:
    """The mission's journal; ``steps``/``delegations``: only the lead's turns of those steps and the turns of
    those delegations (and the tool calls they made)."""
    turns = [_columns(t) for t in session.scalars(select(ModelTurn).where(ModelTurn.mission_id == mission_id)
                                                   .order_by(ModelTurn.id))]
    calls = [_columns(c) for c in session.scalars(select(ToolCall).where(ToolCall.mission_id == mission_id)
                                                   .order_by(ToolCall.id))]
    if steps is None and delegations is None:
        return JournalCopy(turns, calls)

    def kept(key: str) -> bool:
        match = _SUB_SCOPE.match(key)
        if match:
            return delegations is not None and int(match.group("id")) in delegations
        scope = key.split(":")[1] if key.count(":") >= 2 else ""
        return steps is not None and scope.rsplit(".r", 1)[0] in steps

    turns = [t for t in turns if kept(t["key"])]
    asked = {c["id"] for t in turns for c in (t["message"].get("data", {}).get("tool_calls") or []) if c.get("id")}
    return JournalCopy(turns, [c for c in calls if c["call_id"] in asked])


def write_journal(session: Session, journal: JournalCopy, *, mission_id: str, delegation_map: dict[int, int]) -> None:
    """Write ``journal`` as mission ``mission_id``'s, sub-agent keys renumbered by ``delegation_map``."""
    for turn in journal.turns:
        key = turn["key"]
        match = _SUB_SCOPE.match(key)
        if match and int(match.group("id")) in delegation_map:
            key = f"{match.group('agent')}:dlg{delegation_map[int(match.group('id'))]}:{match.group('turn')}"
        session.add(ModelTurn(**{**turn, "mission_id": mission_id, "key": key}))
    for call in journal.calls:
        old = call.get("delegation_id")
        session.add(ToolCall(**{**call, "mission_id": mission_id,
                                "delegation_id": delegation_map.get(old, old) if old is not None else None}))
    session.flush()


def read_decided_approvals(session: Session, *, mission_id: str) -> list[dict[str, Any]]:
    """The mission's decided gates (what a person, or the auto-approval, answered)."""
    return [_columns(a, skip=("id", "mission_id")) for a in session.scalars(
        select(Approval).where(Approval.mission_id == mission_id, Approval.status != "pending").order_by(Approval.id))]


def write_approvals(session: Session, approvals: list[dict[str, Any]], *, mission_id: str) -> None:
    for approval in approvals:
        session.add(Approval(**approval, mission_id=mission_id))
    session.flush()


def delegation_ids(session: Session, *, mission_id: str) -> list[int]:
    return list(session.scalars(select(Delegation.id).where(Delegation.mission_id == mission_id)
                                .order_by(Delegation.id)))


def next_delegation_id(session: Session) -> int:
    """The id the next delegation row gets (one more than the largest; delegations are never deleted)."""
    return int(session.scalar(select(func.max(Delegation.id))) or 0) + 1


def copy_delegations(session: Session, *, from_mission: str, to_mission: str, ids: list[int]) -> dict[int, int]:
    """Copy these delegation rows of ``from_mission`` to ``to_mission``; returns old id -> new id."""
    mapping: dict[int, int] = {}
    for old in ids:
        row = session.get(Delegation, old)
        assert row is not None and row.mission_id == from_mission
        copy = Delegation(**{**_columns(row), "mission_id": to_mission})
        session.add(copy)
        session.flush()
        mapping[old] = copy.id
    return mapping


def read_delegations(session: Session, *, ids: list[int]) -> list[dict[str, Any]]:
    return [_with_id(row) for row in session.scalars(select(Delegation).where(Delegation.id.in_(ids))
                                                     .order_by(Delegation.id))] if ids else []


def write_delegations(session: Session, rows: list[dict[str, Any]], *, mission_id: str) -> dict[int, int]:
    """Insert delegation rows (read from another database) as ``mission_id``'s; returns old id -> new id."""
    mapping: dict[int, int] = {}
    for old_id, row in zip([r["id"] for r in rows], rows, strict=True):
        copy = Delegation(**{**{k: v for k, v in row.items() if k != "id"}, "mission_id": mission_id})
        session.add(copy)
        session.flush()
        mapping[old_id] = copy.id
    return mapping


def trail(session: Session, *, mission_id: str) -> list[Event]:
    """The mission's events in order."""
    return list(session.scalars(select(Event).where(Event.mission_id == mission_id).order_by(Event.seq)))


def steps_of(session: Session, *, mission_id: str) -> list[Step]:
    return list(session.scalars(select(Step).where(Step.mission_id == mission_id).order_by(Step.position)))
