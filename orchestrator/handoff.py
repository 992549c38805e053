"""Handoffs: the ``transfer_to_<agent>`` tools, the ``submit_result`` tool, and who may hand off to whom.

The tools here are never executed: the agent loop intercepts their calls and the graph routes on them.
Their schemas are what a model sees, so their docstrings and fields are the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from langchain_core.tools import BaseTool, StructuredTool

from agents.spec import LEAD_AGENT, SUB_AGENTS, AgentSpec
from orchestrator.briefs import Brief, HandoffResult, StepResult
from orchestrator.errors import ConfigError

__all__ = ["HANDOFF_EDGES", "HANDOFF_PREFIX", "SUBMIT_RESULT", "FINISH_STEP", "create_handoff_tool",
           "submit_result_tool", "finish_step_tool", "handoff_target", "validate_edges"]

HANDOFF_PREFIX = "transfer_to_"
SUBMIT_RESULT = "submit_result"
FINISH_STEP = "finish_step"

HANDOFF_EDGES: Mapping[str, tuple[str, ...]] = {LEAD_AGENT: SUB_AGENTS}
"""Who may hand off to whom; every sub-agent returns to the agent that delegated to it."""


def _tool_name(agent: str) -> str:
    return HANDOFF_PREFIX + agent.replace("-", "_")


def handoff_target(tool_name: str, agents: Mapping[str, AgentSpec]) -> str | None:
    """The agent a ``transfer_to_<agent>`` tool name points at, or None for any other tool."""
    if not tool_name.startswith(HANDOFF_PREFIX):
        return None
    wanted = tool_name[len(HANDOFF_PREFIX):]
    return next((name for name in agents if name.replace("-", "_") == wanted), None)


def create_handoff_tool(agent: AgentSpec) -> BaseTool:
    """The tool through which a lead delegates to ``agent``; its arguments are the brief."""
    return _handoff_tool(agent.name, agent.title, agent.description)


@lru_cache(maxsize=64)
def _handoff_tool(name: str, title: str, description: str) -> BaseTool:
    # Built once per definition: a tool is a schema and a name, and every agent turn binds the same ones.
    def _never_called(task: str, context: str = "", expected_output: str = "") -> str:
        raise RuntimeError("handoff tools are routed by the graph, not executed")

    return StructuredTool.from_function(
        func=_never_called,
        name=_tool_name(name),
        description=(f"Delegate to the {title} agent ({description}). Give a precise task, the "
                     "context it needs (files, figures, constraints) and the output you expect back. "
                     "Its typed result (summary, findings, artifacts, status) comes back as this call's result."),
        args_schema=Brief,
    )


@lru_cache(maxsize=1)
def submit_result_tool() -> BaseTool:
    """The tool a sub-agent calls to end its delegation with a typed result."""

    def _never_called(**_: object) -> str:
        raise RuntimeError("submit_result is read by the agent loop, not executed")

    return StructuredTool.from_function(
        func=_never_called,
        name=SUBMIT_RESULT,
        description="Finish your delegation and hand your result back: summary, findings with severity, "
                    "artifacts (workspace paths) and status (completed, failed, blocked, needs_input).",
        args_schema=HandoffResult,
    )


@lru_cache(maxsize=1)
def finish_step_tool() -> BaseTool:
    """The tool the lead calls to end a procedure step with its typed outcome."""

    def _never_called(**_: object) -> str:
        raise RuntimeError("finish_step is read by the agent loop, not executed")

    return StructuredTool.from_function(
        func=_never_called,
        name=FINISH_STEP,
        description="Finish the current procedure step: status (done, failed or blocked), a summary with the "
                    "figures the tools computed, the reason when it is not done, and findings with severity.",
        args_schema=StepResult,
    )


def validate_edges(agents: Mapping[str, AgentSpec], edges: Mapping[str, tuple[str, ...]] = HANDOFF_EDGES) -> None:
    """Refuse a graph whose handoff edges name an agent with no definition, or hand off to itself."""
    for source, targets in edges.items():
        if source not in agents:
            raise ConfigError(f"handoff edge source {source!r} has no agent definition")
        for target in targets:
            if target not in agents:
                raise ConfigError(f"handoff edge {source!r} -> {target!r}: no agent definition named {target!r}")
            if target == source:
                raise ConfigError(f"handoff edge {source!r} -> {target!r} points at itself")
