"""One agent's turn loop inside a node: ask the model, run its tool calls, until it answers or hands off.

Every model answer is journaled by its place in the conversation and every tool result by its call id,
so re-executing a node (after an interrupt or a crash) replays instead of acting twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolCall, ToolMessage
from pydantic import ValidationError

from agents.spec import AgentSpec
from orchestrator.briefs import Brief, HandoffResult, StepResult
from orchestrator.context import RunContext
from orchestrator.errors import LimitExceeded
from orchestrator.executor import execute_tool_call
from orchestrator.handoff import (
    FINISH_STEP,
    SUBMIT_RESULT,
    create_handoff_tool,
    finish_step_tool,
    handoff_target,
    submit_result_tool,
)
from orchestrator.journal import Journal
from orchestrator.telemetry import agent_turn
from orchestrator.toolset import tools_of
from tools.context import Signal
from tools.redaction import redact

__all__ = ["run_agent", "LoopResult"]


@dataclass
class LoopResult:
    """How the loop ended, and what it added to the conversation."""

    messages: list[BaseMessage] = field(default_factory=list)
    final: AIMessage | None = None
    handoff: tuple[str, Brief, str] | None = None
    """(target agent, brief, tool-call id) when the agent delegated."""
    submitted: HandoffResult | None = None
    concluded: StepResult | None = None
    """The lead's typed outcome of the step (``finish_step``); None when it just answered."""
    signals: list[Signal] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    journal: Journal = None  # type: ignore[assignment]
    """Holds model answers not yet written: the caller's next record (``journal.write()``) writes them."""


def _ask_model(journal: Journal, agent: AgentSpec, bound, system: SystemMessage,  # noqa: ANN001
               messages: list[BaseMessage], *, key: str, step: str, delegation_id: int | None) -> AIMessage:
    recorded = journal.turns.get(key)
    if recorded is not None:
        return recorded
    with agent_turn(agent=agent.name, step=step, key=key) as turn:  # a span when tracing is on
        answer = bound.invoke([system, *messages])
        if not isinstance(answer, AIMessage):
            answer = AIMessage(content=str(answer.content))
        turn.usage(answer.usage_metadata)
    answer.content = redact(answer.content) if isinstance(answer.content, str) else answer.content
    journal.add_turn(key, answer, agent=agent.name, step=step, delegation_id=delegation_id)
    return answer


def run_agent(*, run: RunContext, agent: AgentSpec, system: str, history: list[BaseMessage], step: str,
              scope: str, delegation_id: int | None = None, peers: list[AgentSpec] = (),  # type: ignore[assignment]
              is_sub: bool = False, journal: Journal | None = None) -> LoopResult:
    """Run ``agent`` from ``history`` until it answers, hands off (lead) or submits its result (sub-agent)."""
    tools = tools_of(agent, run)  # the registry's, and the agent's MCP servers' (orchestrator.mcp_tools)
    allowed = {tool.name: tool for tool in tools}
    control = [create_handoff_tool(peer) for peer in peers] + [submit_result_tool() if is_sub else finish_step_tool()]
    bound = run.model_factory(agent, run).bind_tools([*tools, *control])
    peer_names = {peer.name for peer in peers}
    instructions = SystemMessage(content=system)
    messages = list(history)
    out = LoopResult(journal=journal or Journal.load(run.database_url, run.mission_id, agent=agent.name, scope=scope))
    for _ in range(run.settings.max_agent_turns):
        answer = _ask_model(out.journal, agent, bound, instructions, messages,
                            key=f"{agent.name}:{scope}:{len(messages)}", step=step,
                            delegation_id=delegation_id)
        usage = answer.usage_metadata or {}
        out.input_tokens += usage.get("input_tokens", 0)
        out.output_tokens += usage.get("output_tokens", 0)
        messages.append(answer)
        out.messages.append(answer)
        if not answer.tool_calls:
            out.final = answer
            return out
        for call in answer.tool_calls:
            reply = _control_call(call, out, peer_names=peer_names, is_sub=is_sub, run=run)
            if reply is None:
                outcome = execute_tool_call(call, run=run, agent=agent.name, step=step, delegation_id=delegation_id,
                                            allowed=allowed, journal=out.journal)
                reply = outcome.message
                out.signals.extend(outcome.signals)
            if reply is not _HANDED_OFF:
                messages.append(reply)
                out.messages.append(reply)
        if out.submitted is not None or out.handoff is not None or out.concluded is not None:
            return out
    raise LimitExceeded(f"{agent.name} took more than {run.settings.max_agent_turns} model turns in {scope} "
                        "(ORCH_MAX_AGENT_TURNS)")


_HANDED_OFF = ToolMessage(content="", tool_call_id="-")
"""Marker: the call's answer will be the sub-agent's result, appended when it comes back."""


def _control_call(call: ToolCall, out: LoopResult, *, peer_names: set[str], is_sub: bool,
                  run: RunContext) -> ToolMessage | None:
    """Handle ``submit_result`` and ``transfer_to_*`` calls; None for an ordinary tool call."""
    call_id = call["id"] or ""
    if is_sub and call["name"] == SUBMIT_RESULT:
        try:
            out.submitted = HandoffResult(**call["args"])
        except ValidationError as exc:
            return ToolMessage(content=f"Error: invalid result: {exc.errors()[0]['msg']}", tool_call_id=call_id,
                               status="error")
        return ToolMessage(content="Result submitted.", tool_call_id=call_id)
    if not is_sub and call["name"] == FINISH_STEP:
        try:
            out.concluded = StepResult(**call["args"])
        except ValidationError as exc:
            return ToolMessage(content=f"Error: invalid step result: {exc.errors()[0]['msg']}", tool_call_id=call_id,
                               status="error")
        return ToolMessage(content=f"Step outcome recorded: {out.concluded.status}.", tool_call_id=call_id)
    target = handoff_target(call["name"], run.agents)
    if target is None:
        return None
    if target not in peer_names:
        return ToolMessage(content=f"Error: you cannot hand off to {target}", tool_call_id=call_id, status="error")
    if out.handoff is not None:
        return ToolMessage(content="Error: one handoff per turn; call it again once the first one returned.",
                           tool_call_id=call_id, status="error")
    try:
        brief = Brief(**call["args"])
    except ValidationError as exc:
        return ToolMessage(content=f"Error: invalid brief: {exc.errors()[0]['msg']}", tool_call_id=call_id,
                           status="error")
    out.handoff = (target, brief, call_id)
    return _HANDED_OFF
