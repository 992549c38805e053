"""The delegation graph of a mission: agents as nodes (lead first), delegations as edges."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from agents.spec import LEAD_AGENT, agent_title
from orchestrator.api.deps import Reader, SessionDep, visible_mission
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.schemas import DelegationGraphPublic, GraphEdge, GraphNode
from orchestrator.db.models import Delegation
from orchestrator.views import delegation_view

__all__ = ["router"]

router = APIRouter(prefix="/missions", tags=["delegations"], responses=PROBLEM_RESPONSES)


@router.get("/{mission_id}/delegations", response_model=DelegationGraphPublic)
def read_delegations(mission_id: str, session: SessionDep, caller: Reader) -> DelegationGraphPublic:
    """The mission's delegations as a graph ready to draw, each edge with brief, result, timing and cost."""
    mission = visible_mission(session, caller, mission_id)
    lead = str((mission.spec or {}).get("agent") or LEAD_AGENT)
    rows = session.scalars(select(Delegation).where(Delegation.mission_id == mission_id)
                           .order_by(Delegation.id)).all()
    names = [lead]
    for row in rows:
        for name in (row.from_agent, row.to_agent):
            if name not in names:
                names.append(name)
    nodes = [GraphNode(id=name, label=agent_title(name), kind="lead" if name == lead else "sub") for name in names]
    edges = []
    for row in rows:
        view = delegation_view(row)
        view.pop("checkpoint_id", None)
        view["from"], view["to"] = view.pop("from_agent"), view.pop("to_agent")
        edges.append(GraphEdge.model_validate(view))
    return DelegationGraphPublic(nodes=nodes, edges=edges)
