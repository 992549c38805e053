"""Approvals: the pending human gates, and decisions that quote the payload hash they were shown."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from orchestrator.api.deps import ApprovalReader, Decider, RowId, ServiceDep, SessionDep
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.schemas import ApprovalDecisionCreate, ApprovalPublic
from orchestrator.db import session_scope
from orchestrator.db.approvals import pending_approvals
from orchestrator.db.models import Approval
from orchestrator.views import approval_view

__all__ = ["router"]

router = APIRouter(prefix="/approvals", tags=["approvals"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=list[ApprovalPublic])
def list_approvals(session: SessionDep, caller: ApprovalReader,
                   mission_id: Annotated[str | None, Query(max_length=32)] = None) -> list[dict]:
    """List the pending approvals (of one mission, or of all)."""
    return [approval_view(row) for row in pending_approvals(session, mission_id=mission_id)]


_DECISIONS = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}


@router.post("/{approval_id}/decision", response_model=ApprovalPublic)
def decide_approval(approval_id: RowId, body: ApprovalDecisionCreate, service: ServiceDep, caller: Decider) -> dict:
    """Approve, reject or request changes on a gate; refused (409) when the quoted payload hash is stale."""
    with session_scope(service.url) as session:
        row = session.get(Approval, approval_id)
        if row is None:
            raise HTTPException(404, f"no approval with id {approval_id}")
        mission_id = row.mission_id
    decided = service.runner.decide(mission_id, decision=_DECISIONS[body.decision], actor=caller.name,
                                    comment=body.comment, approval_id=approval_id,
                                    quoted_sha256=body.payload_sha256)
    if service.pool is not None:
        service.pool.wake()
    return decided
