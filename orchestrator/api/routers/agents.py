"""Agent definitions in force: who they are, their provenance hash and the tools they may use."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.deps import CallerDep, ServiceDep
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.schemas import AgentPublic
from tools.registry import tools_for

__all__ = ["router"]

router = APIRouter(prefix="/agents", tags=["agents"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=list[AgentPublic])
def list_agents(service: ServiceDep, caller: CallerDep) -> list[AgentPublic]:
    """List the agent definitions with their SHA-256 and the concrete tools they are granted."""
    out = []
    for spec in service.runner.agents.values():
        tools = [tool.name for tool in tools_for(spec.tools, profile=spec.tooling_profile)]
        out.append(AgentPublic(name=spec.name, title=spec.title, description=spec.description, sha256=spec.sha256,
                               tools=tools, tooling_profile=spec.tooling_profile, model=spec.model,
                               maturity_level=spec.maturity_level))
    return out
