"""Delegations: one row per handoff edge taken, opened when the brief goes out and closed with the result."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.audit import append_event
from orchestrator.db.models import Delegation, utcnow

__all__ = ["open_delegation", "close_delegation", "find_open_delegation", "count_delegations"]


def open_delegation(session: Session, *, mission_id: str, from_agent: str, to_agent: str, step: str, reason: str,
                    brief: dict[str, Any], tool_call_id: str | None, from_sha256: str, to_sha256: str,
                    checkpoint_id: str | None = None) -> Delegation:
    """Record that ``from_agent`` handed ``brief`` to ``to_agent``; idempotent on the handoff's tool-call id."""
    if tool_call_id is not None:
        existing = session.scalar(select(Delegation).where(Delegation.mission_id == mission_id,
                                                           Delegation.tool_call_id == tool_call_id))
        if existing is not None:
            return existing
    row = Delegation(mission_id=mission_id, from_agent=from_agent, to_agent=to_agent, step=step, reason=reason,
                     brief=brief, tool_call_id=tool_call_id, status="running", from_sha256=from_sha256,
                     to_sha256=to_sha256, checkpoint_id=checkpoint_id)
    session.add(row)
    session.flush()
    append_event(session, mission_id=mission_id, kind="handoff.started", actor=from_agent, step=step,
                 delegation_id=row.id, payload={"to": to_agent, "reason": reason, "brief": brief})
    return row


def close_delegation(session: Session, *, delegation_id: int, result: dict[str, Any], status: str,
                     input_tokens: int | None = None, output_tokens: int | None = None,
                     cost_usd: float | None = None) -> Delegation:
    """Record what came back, how long it took and what it cost."""
    row = session.get(Delegation, delegation_id)
    if row is None:
        raise LookupError(f"delegation {delegation_id} does not exist")
    if row.finished_at is not None:
        return row
    row.result = result
    row.status = status
    row.finished_at = utcnow()
    started = row.started_at if row.started_at.tzinfo else row.started_at.replace(tzinfo=row.finished_at.tzinfo)
    row.duration_ms = round((row.finished_at - started).total_seconds() * 1000, 1)
    row.input_tokens, row.output_tokens, row.cost_usd = input_tokens, output_tokens, cost_usd
    append_event(session, mission_id=row.mission_id, kind="handoff.finished", actor=row.to_agent, step=row.step,
                 delegation_id=row.id,
                 payload={"to": row.from_agent, "status": status, "result": result, "duration_ms": row.duration_ms,
                          "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost_usd})
    return row


def find_open_delegation(session: Session, *, mission_id: str, tool_call_id: str) -> Delegation | None:
    return session.scalar(select(Delegation).where(Delegation.mission_id == mission_id,
                                                   Delegation.tool_call_id == tool_call_id))


def count_delegations(session: Session, *, mission_id: str, from_agent: str | None = None,
                      to_agent: str | None = None, step: str | None = None) -> int:
    stmt = select(func.count()).select_from(Delegation).where(Delegation.mission_id == mission_id)
    if from_agent:
        stmt = stmt.where(Delegation.from_agent == from_agent)
    if to_agent:
        stmt = stmt.where(Delegation.to_agent == to_agent)
    if step:
        stmt = stmt.where(Delegation.step == step)
    return session.scalar(stmt) or 0
