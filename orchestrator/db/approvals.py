"""Approvals: the human gates, bound to the exact payload a person was shown."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.audit import append_event
from orchestrator.db.direct import Statement, Writer
from orchestrator.db.models import Approval, utcnow
from orchestrator.errors import ApprovalStale, InputError, InvalidTransition
from orchestrator.events import EventKind

__all__ = ["Decision", "Gate", "approve_now", "decide_approval", "payload_sha256", "pending_approvals",
           "request_approval"]

Decision = Literal["approved", "rejected", "changes_requested"]
"""What a person may decide at a gate: go on, stop, or have the step run again with their comment."""


def payload_sha256(payload: dict[str, Any]) -> str:
    """The hash a decision must quote: SHA-256 of the payload's canonical JSON."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Gate(NamedTuple):
    """An approval as the gate that asked for it sees it."""

    id: int
    status: str
    payload: dict[str, Any]
    payload_sha256: str
    decided_by: str | None
    comment: str | None


# Every mission passes the release gate: its records are written directly (orchestrator.db.direct).
_FIND = Statement("SELECT id, status, payload, payload_sha256, decided_by, comment FROM approvals "
                  "WHERE mission_id = :mission_id AND key = :key", Approval.__table__,
                  returns=("id", "status", "payload", "payload_sha256", "decided_by", "comment"))
_OPEN = Statement("INSERT INTO approvals (mission_id, key, kind, step, agent, question, payload, payload_sha256, "
                  "status, created_at) VALUES (:mission_id, :key, :kind, :step, :agent, :question, :payload, "
                  ":payload_sha256, 'pending', :created_at) RETURNING id", Approval.__table__, returns=("id",))
_DECIDE = Statement("UPDATE approvals SET status = :status, decided_by = :decided_by, decided_at = :decided_at, "
                    "comment = :comment WHERE id = :id AND status = 'pending' RETURNING id", Approval.__table__,
                    returns=("id",))


def request_approval(session: Writer, *, mission_id: str, key: str, kind: str, step: str, agent: str,
                     question: str, payload: dict[str, Any] | Callable[[Writer], dict[str, Any]]) -> Gate:
    """Open a gate (idempotent on ``key``: a replayed node finds the same row).

    ``payload`` may be a function of the transaction: it is then read only when the gate is new.
    """
    found = _FIND.run(session, {"mission_id": mission_id, "key": key})
    if found:
        return Gate(*found[0])
    if callable(payload):
        payload = payload(session)
    payload = json.loads(json.dumps(payload, default=str))
    sha = payload_sha256(payload)
    ((approval_id,),) = _OPEN.run(session, {
        "mission_id": mission_id, "key": key, "kind": kind, "step": step, "agent": agent, "question": question,
        "payload": payload, "payload_sha256": sha, "created_at": utcnow()})
    append_event(session, mission_id=mission_id, kind=EventKind.APPROVAL_REQUESTED, actor=agent, step=step,
                 payload={"approval_id": approval_id, "kind": kind, "question": question, "payload": payload,
                          "payload_sha256": sha})
    return Gate(approval_id, "pending", payload, sha, None, None)


def approve_now(session: Writer, *, mission_id: str, gate: Gate, step: str, actor: str, comment: str) -> Gate:
    """Approve a gate that was just opened, on the spot (``demo``, ``--approve-all``)."""
    if not _DECIDE.run(session, {"id": gate.id, "status": "approved", "decided_by": actor,
                                 "decided_at": utcnow(), "comment": comment}):
        raise InvalidTransition(f"approval {gate.id} is no longer pending")
    _record_decision(session, mission_id=mission_id, approval_id=gate.id, step=step, decision="approved",
                     actor=actor, comment=comment, sha=gate.payload_sha256)
    return gate._replace(status="approved", decided_by=actor, comment=comment)


def _record_decision(session: Writer, *, mission_id: str, approval_id: int, step: str, decision: str, actor: str,
                     comment: str | None, sha: str) -> None:
    append_event(session, mission_id=mission_id, kind=EventKind.APPROVAL_DECIDED, actor=actor, step=step,
                 payload={"approval_id": approval_id, "decision": decision, "comment": comment,
                          "payload_sha256": sha})


def decide_approval(session: Session, *, mission_id: str, decision: Decision, actor: str,
                    approval_id: int | None = None, comment: str | None = None,
                    quoted_sha256: str | None = None) -> Approval:
    """Decide the pending gate (the given one, or the only one pending); a stale quoted hash is refused."""
    stmt = select(Approval).where(Approval.mission_id == mission_id, Approval.status == "pending")
    if approval_id is not None:
        stmt = select(Approval).where(Approval.mission_id == mission_id, Approval.id == approval_id)
    row = session.scalar(stmt.order_by(Approval.id).with_for_update())
    if row is None:
        raise InvalidTransition(f"mission {mission_id} has no pending approval"
                                + (f" with id {approval_id}" if approval_id is not None else ""))
    if row.status != "pending":
        raise InvalidTransition(f"approval {row.id} was already {row.status} by {row.decided_by}")
    if decision not in get_args(Decision):
        raise InputError(f"decision must be one of {', '.join(get_args(Decision))}, not {decision!r}")
    if quoted_sha256 is not None and quoted_sha256 != row.payload_sha256:
        raise ApprovalStale(f"approval {row.id}: the payload hash you quoted ({quoted_sha256[:16]}...) is not the "
                            f"one pending ({row.payload_sha256[:16]}...); reload the approval and decide again")
    row.status, row.decided_by, row.decided_at, row.comment = decision, actor, utcnow(), comment
    _record_decision(session, mission_id=mission_id, approval_id=row.id, step=row.step, decision=decision,
                     actor=actor, comment=comment, sha=row.payload_sha256)
    return row


def pending_approvals(session: Session, *, mission_id: str | None = None) -> list[Approval]:
    stmt = select(Approval).where(Approval.status == "pending").order_by(Approval.id)
    if mission_id:
        stmt = stmt.where(Approval.mission_id == mission_id)
    return list(session.scalars(stmt))
