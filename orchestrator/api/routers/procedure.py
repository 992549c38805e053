"""The procedure as declared in ``orchestrator.procedure``, read-only: the web page draws it and lists its steps
from here instead of keeping a copy."""

from __future__ import annotations

from typing import Literal, get_args

from fastapi import APIRouter
from langgraph.graph import END
from pydantic import BaseModel, ConfigDict, Field

from agents.spec import LEAD_AGENT, SUB_AGENTS, agent_title
from orchestrator.api.deps import Reader
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.procedure import AFTER_DETOUR, PROCEDURE, MissionStatus, Outcome, StepStatus

__all__ = ["ProcedurePublic", "router"]

router = APIRouter(prefix="/procedure", tags=["procedure"], responses=PROBLEM_RESPONSES)


def _node(name: str) -> str:
    return {END: "end", AFTER_DETOUR: "return"}.get(name, name)


class ProcedureStepPublic(BaseModel):
    name: str
    title: str
    lead: str
    handoffs: list[str] = Field(description="Sub-agents the lead may delegate to during this step.")
    next: str = Field(description="The node after the step when it is done: a step, a gate, 'end', or 'return' "
                                  "(a detour goes back to the step after the one that took it).")
    listed: bool = Field(description="Shown from the start (a detour such as the manual plan only once taken).")


class ProcedureAgentPublic(BaseModel):
    id: str
    title: str
    kind: Literal["lead", "sub"]


class ProcedureGatePublic(BaseModel):
    name: str
    question: str


class ProcedureEdgePublic(BaseModel):
    """One edge of the drawn graph: every place a node may go, labelled with why."""

    from_: str = Field(alias="from")
    to: str
    label: str

    model_config = ConfigDict(populate_by_name=True)


class FailureEdgePublic(BaseModel):
    signal: str
    steps: list[str] = Field(description="Steps whose outcome takes it (every step when empty).")
    to: str
    limit: str | None
    on_limit: str | None
    description: str


class ProcedurePublic(BaseModel):
    """The steps in order, the agents, the gates, every edge of the graph, the failure modes and the statuses."""

    steps: list[ProcedureStepPublic]
    agents: list[ProcedureAgentPublic]
    gates: list[ProcedureGatePublic]
    edges: list[ProcedureEdgePublic]
    failure_edges: list[FailureEdgePublic]
    step_statuses: list[str]
    mission_statuses: list[str]
    terminal_statuses: list[str] = Field(description="The mission statuses that end a mission (its outcomes).")


def procedure_public() -> ProcedurePublic:
    """The declaration as JSON; built once (it never changes while the process runs)."""
    edges = [ProcedureEdgePublic(from_=_node(node), to=_node(target), label=label)
             for node in PROCEDURE.nodes for target, label in PROCEDURE.destinations(node).items()]
    return ProcedurePublic(
        steps=[ProcedureStepPublic(name=s.name, title=s.title, lead=s.lead, handoffs=list(s.handoffs),
                                   next=_node(s.next), listed=s.listed) for s in PROCEDURE.steps],
        agents=[ProcedureAgentPublic(id=a, title=agent_title(a), kind="lead" if a == LEAD_AGENT else "sub")
                for a in (LEAD_AGENT, *SUB_AGENTS)],
        gates=[ProcedureGatePublic(name=g.name, question=g.question) for g in PROCEDURE.gates],
        edges=edges,
        failure_edges=[FailureEdgePublic(signal=e.signal, steps=list(e.steps), to=_node(e.to), limit=e.limit,
                                         on_limit=_node(e.on_limit) if e.on_limit else None,
                                         description=e.description) for e in PROCEDURE.edges],
        step_statuses=list(get_args(StepStatus)),
        mission_statuses=list(get_args(MissionStatus)),
        terminal_statuses=list(get_args(Outcome)),
    )


_PUBLIC = procedure_public()


@router.get("", response_model=ProcedurePublic, response_model_by_alias=True)
def read_procedure(caller: Reader) -> ProcedurePublic:
    """The procedure every mission follows: steps, agents, gates, the drawn graph's edges, statuses."""
    return _PUBLIC
