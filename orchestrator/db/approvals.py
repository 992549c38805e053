"""Approvals: the human gates, bound to the exact payload a person was shown."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.audit import append_event
from orchestrator.db.models import Approval, utcnow
from orchestrator.errors import ApprovalStale, InputError, InvalidTransition

__all__ = ["payload_sha256", "request_approval", "decide_approval", "pending_approvals", "Decision"]

Decision = Literal["approved", "rejected"]


def payload_sha256(payload: dict[str, Any]) -> str:
    """The hash a decision must quote: SHA-256 of the payload's canonical JSON."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def request_approval(session: Session, *, mission_id: str, key: str, kind: str, step: str, agent: str,
                     question: str, payload: dict[str, Any] | Callable[[Session], dict[str, Any]]) -> Approval:
    """Open a gate (idempotent on ``key``: a replayed node finds the same row).

    ``payload`` may be a function of the session: it is then read only when the gate is new.
    """
    existing = session.scalar(select(Approval).where(Approval.mission_id == mission_id, Approval.key == key))
    if existing is not None:
        return existing
    if callable(payload):
        payload = payload(session)
    payload = json.loads(json.dumps(payload, default=str))
    row = Approval(mission_id=mission_id, key=key, kind=kind, step=step, agent=agent, question=question,
                   payload=payload, payload_sha256=payload_sha256(payload), status="pending")
    session.add(row)
    session.flush()
    append_event(session, mission_id=mission_id, kind="approval.requested", actor=agent, step=step,
                 payload={"approval_id": row.id, "kind": kind, "question": question, "payload": payload,
                          "payload_sha256": row.payload_sha256})
    return row


def decide_approval(session: Session, *, mission_id: str, decision: Decision, actor: str,
                    approval_id: int | None = None, comment: str | None = None,
                    quoted_sha256: str | None = None, approval: Approval | None = None) -> Approval:
    """Decide the pending gate (the given one, or the only one pending); a stale quoted hash is refused.

    ``approval``: the row itself, when the caller created it in this very transaction.
    """
    row = approval
    if row is None:
        stmt = select(Approval).where(Approval.mission_id == mission_id, Approval.status == "pending")
        if approval_id is not None:
            stmt = select(Approval).where(Approval.mission_id == mission_id, Approval.id == approval_id)
        row = session.scalar(stmt.order_by(Approval.id).with_for_update())
    if row is None:
        raise InvalidTransition(f"mission {mission_id} has no pending approval"
                                + (f" with id {approval_id}" if approval_id is not None else ""))
    if row.status != "pending":
        raise InvalidTransition(f"approval {row.id} was already {row.status} by {row.decided_by}")
    if decision not in ("approved", "rejected"):
        raise InputError(f"decision must be 'approved' or 'rejected', not {decision!r}")
    if quoted_sha256 is not None and quoted_sha256 != row.payload_sha256:
        raise ApprovalStale(f"approval {row.id}: the payload hash you quoted ({quoted_sha256[:16]}...) is not the "
                            f"one pending ({row.payload_sha256[:16]}...); reload the approval and decide again")
    row.status, row.decided_by, row.decided_at, row.comment = decision, actor, utcnow(), comment
    append_event(session, mission_id=mission_id, kind="approval.decided", actor=actor, step=row.step,
                 payload={"approval_id": row.id, "decision": decision, "comment": comment,
                          "payload_sha256": row.payload_sha256})
    return row


def pending_approvals(session: Session, *, mission_id: str | None = None) -> list[Approval]:
    stmt = select(Approval).where(Approval.status == "pending").order_by(Approval.id)
    if mission_id:
        stmt = stmt.where(Approval.mission_id == mission_id)
    return list(session.scalars(stmt))
