"""Who the presented API key belongs to, and what its role lets it do (the web page shows only that)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from orchestrator.api.deps import DOES, GRANTS, CallerDep
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.schemas import MePublic

__all__ = ["MeGrantsPublic", "router"]

router = APIRouter(prefix="/me", tags=["me"], responses=PROBLEM_RESPONSES)


class MeGrantsPublic(MePublic):
    """The caller, its role's permissions (from the role table) and, for each one it lacks, what it may not do."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "auditor-1a2b", "role": "auditor",
        "permissions": ["approval.read", "audit.read", "mission.read", "service.read", "workspace.read"],
        "denied": {"approval.decide": "decide approvals", "mission.act": "send messages to, cancel or resume missions",
                   "mission.create": "start missions", "workspace.create": "create workspaces"}}]})
    permissions: list[str] = Field(description="What this key's role may do, sorted.")
    denied: dict[str, str] = Field(description="Each permission the role lacks, as the end of 'may not ...'.")


@router.get("", response_model=MeGrantsPublic)
def read_me(caller: CallerDep) -> MeGrantsPublic:
    """The name and role of the key presented, and what that role may and may not do."""
    granted = GRANTS.get(caller.role, frozenset())
    return MeGrantsPublic(name=caller.name, role=caller.role, permissions=sorted(granted),
                          denied={p: DOES[p] for p in sorted(DOES) if p not in granted})
