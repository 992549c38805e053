"""Who the presented API key belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.deps import CallerDep
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.schemas import MePublic

__all__ = ["router"]

router = APIRouter(prefix="/me", tags=["me"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=MePublic)
def read_me(caller: CallerDep) -> MePublic:
    """The name and role of the key presented."""
    return MePublic(name=caller.name, role=caller.role)
