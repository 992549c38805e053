"""The one assistant (the procedure graph), its drawn graph and schemas; ``/info``; the Agent Protocol's
``/agents`` aliases of the same."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, TypeAdapter

from orchestrator.api.deps import CallerDep, Service, ServiceDep
from orchestrator.api.langgraph.launch import check_assistant
from orchestrator.api.langgraph.schemas import AssistantSearch
from orchestrator.api.langgraph.views import ASSISTANT_ID, GRAPH_ID
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.db.models import utcnow
from orchestrator.views import iso

__all__ = ["router", "assistant_view"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["langgraph: assistants"], responses=PROBLEM_RESPONSES)
_DESCRIPTION = ("The ML Engineer's procedure (align, design, implement, evaluate, package, release, report) with "
                "its sub-agents as handoff targets and its human gates as interrupts.")


class MissionInput(BaseModel):
    """A thread's first run: the mission, as human messages (the seed's form or free text)."""

    messages: list[dict[str, Any]] = Field(description="e.g. [{'role': 'user', 'content': 'Mission: ...'}]")


class MissionContext(BaseModel):
    """What a run may say besides its input."""

    workspace: str | None = Field(default=None, description="A directory under the workspace roots (else the "
                                                             "thread's metadata.workspace).")


class Decision(BaseModel):
    """What resumes a gate: the decision, quoting the SHA-256 of the payload shown in the interrupt."""

    decision: str = Field(description="approve or reject")
    payload_sha256: str
    comment: str | None = None


def assistant_view(service: Service) -> dict[str, Any]:
    started = service.extras.setdefault("langgraph_started", iso(utcnow()))
    return {"assistant_id": ASSISTANT_ID, "graph_id": GRAPH_ID, "name": GRAPH_ID, "description": _DESCRIPTION,
            "config": {}, "context": {}, "metadata": {"created_by": "system"}, "version": 1,
            "created_at": started, "updated_at": started}


def _state_schema(service: Service) -> dict[str, Any] | None:
    try:
        return TypeAdapter(service.runner.graph.builder.state_schema).json_schema()
    except Exception as exc:  # a schema that cannot be generated is reported missing, as LangGraph does
        log.warning("the graph's state schema cannot be generated: %s", exc)
        return None


def _schemas(service: Service) -> dict[str, Any]:
    state = _state_schema(service)
    return {"graph_id": GRAPH_ID, "input_schema": MissionInput.model_json_schema(), "output_schema": state,
            "state_schema": state, "config_schema": None, "context_schema": MissionContext.model_json_schema(),
            "resume_schema": Decision.model_json_schema()}


@router.get("/info", response_model=dict[str, Any])
def read_info(caller: CallerDep) -> dict[str, Any]:
    """What this server offers of the LangGraph Platform API."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("ml-orchestrator")
    except PackageNotFoundError:
        ours = "0"
    return {"version": ours, "langgraph_py_version": version("langgraph"),
            "flags": {"assistants": True, "crons": False, "langsmith": False, "langsmith_tracing_replicas": False},
            "host": {"kind": "ml-orchestrator", "graphs": [GRAPH_ID]}}


@router.post("/assistants/search", response_model=list[dict[str, Any]])
def search_assistants(body: AssistantSearch, service: ServiceDep, caller: CallerDep) -> list[dict[str, Any]]:
    """The assistants matching the filters: this server has one."""
    assistant = assistant_view(service)
    matches = ((body.graph_id in (None, GRAPH_ID)) and (body.name in (None, GRAPH_ID))
               and all(assistant["metadata"].get(k) == v for k, v in (body.metadata or {}).items()))
    return [assistant][body.offset:body.offset + body.limit] if matches else []


@router.get("/assistants/{assistant_id}", response_model=dict[str, Any])
def read_assistant(assistant_id: str, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """The assistant (by its id, or by the graph's name)."""
    check_assistant(assistant_id)
    return assistant_view(service)


@router.get("/assistants/{assistant_id}/graph", response_model=dict[str, Any])
def read_assistant_graph(assistant_id: str, service: ServiceDep, caller: CallerDep,
                         xray: bool | int = Query(default=False)) -> dict[str, Any]:
    """The compiled graph's nodes and edges, as LangGraph draws them."""
    check_assistant(assistant_id)
    return service.runner.graph.get_graph(xray=xray).to_json()


@router.get("/assistants/{assistant_id}/schemas", response_model=dict[str, Any])
def read_assistant_schemas(assistant_id: str, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """Input, state, context and resume schemas (a schema that cannot be generated is null)."""
    check_assistant(assistant_id)
    return _schemas(service)


@router.get("/assistants/{assistant_id}/subgraphs", response_model=dict[str, Any])
def read_assistant_subgraphs(assistant_id: str, caller: CallerDep) -> dict[str, Any]:
    """The graph has no subgraphs."""
    check_assistant(assistant_id)
    return {}


def _agent(service: Service) -> dict[str, Any]:
    return {"agent_id": ASSISTANT_ID, "name": GRAPH_ID, "description": _DESCRIPTION, "metadata": {},
            "capabilities": {"ap.io.messages": True, "ap.io.streaming": True}}


@router.post("/agents/search", response_model=list[dict[str, Any]], tags=["agent protocol"])
def search_agents(body: AssistantSearch, service: ServiceDep, caller: CallerDep) -> list[dict[str, Any]]:
    """Agent Protocol: the agents this server runs (one)."""
    matches = body.name in (None, GRAPH_ID)
    return [_agent(service)][body.offset:body.offset + body.limit] if matches else []


@router.get("/agents/{agent_id}", response_model=dict[str, Any], tags=["agent protocol"])
def read_agent(agent_id: str, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """Agent Protocol: the agent."""
    check_assistant(agent_id)
    return _agent(service)


@router.get("/agents/{agent_id}/schemas", response_model=dict[str, Any], tags=["agent protocol"])
def read_agent_schemas(agent_id: str, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """Agent Protocol: the agent's input, output, state and config schemas."""
    check_assistant(agent_id)
    schemas = _schemas(service)
    return {"agent_id": ASSISTANT_ID, **{k: v for k, v in schemas.items() if k != "graph_id"}}
