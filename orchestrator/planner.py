"""The built-in deterministic planner: a chat model that is not an LLM.

It drives the same graph with the same tools as any chat model would. Each turn it reads the run facts
from the system prompt, picks the playbook of that agent and step (``agents/playbooks``), replays it
against the tool results already in the conversation, and answers with the playbook's next move as
tool calls, or with its final summary. Every figure in its messages comes from a tool result.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ValidationError

from agents.playbooks import Call, Finish, Handoff, View, playbook_for
from agents.playbooks.instructions import reply_to
from orchestrator.briefs import Brief, HandoffResult
from orchestrator.errors import INTERRUPTED_MARK
from orchestrator.handoff import FINISH_STEP, HANDOFF_PREFIX, SUBMIT_RESULT
from orchestrator.mission import MissionSpec
from orchestrator.prompts import STEP_MARK, RunFacts, read_facts

__all__ = ["BuiltinPlanner"]

_VERDICTS = {"completed": "done", "failed": "failed", "blocked": "blocked", "needs_input": "blocked"}
"""A playbook's result status as the lead's step verdict."""
_BRIEF_RE = re.compile(r"^(Task|Context|Expected output): (.*)$", re.M)


class BuiltinPlanner(BaseChatModel):
    """Deterministic playbook planner (no LLM): same graph, same tools, computed figures only."""

    mission: MissionSpec

    @property
    def _llm_type(self) -> str:
        return "builtin-planner"

    def bind_tools(self, tools: Any, **kwargs: Any) -> BuiltinPlanner:  # type: ignore[override]
        # The playbooks name their tools; the policy layer still checks each call against the agent's allowlist.
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        facts = read_facts(messages)
        message = self._next_message(facts, messages)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _next_message(self, facts: RunFacts, messages: list[BaseMessage]) -> AIMessage:
        is_sub = re.fullmatch(r"dlg\d+", facts.scope) is not None
        playbook = playbook_for(facts.agent, facts.step)
        if playbook is None:
            summary = f"The built-in planner has no playbook for {facts.agent} in step {facts.step}; nothing was done."
            return self._finish(Finish(summary=summary, status="failed"), is_sub, facts)
        start = _scope_start(messages, facts, is_sub)
        notes = tuple(_notes(messages[start - 1])) if not is_sub else ()
        view = View(mission=self.mission, agent=facts.agent, step=facts.step, workspace=Path(facts.workspace),
                    brief=_brief(messages[start - 1]) if is_sub else None, reason=facts.reason,
                    round=max(facts.round - 1, 0),  # run facts count from 1; a View counts rounds already run
                    notes=notes,
                    instructions=tuple(n for m in messages[:start] if isinstance(m, HumanMessage)
                                       for n in _notes(m)) if not is_sub else (),
                    outcomes=_outcomes(messages[:start]) if not is_sub else ())
        generator = playbook(view)
        turns = _turns(messages[start:])
        # The user's messages get their answer in the lead's first turn of the step that receives them.
        replies = "\n".join(reply_to(note) for note in notes) if not turns else ""
        rerun = ""
        try:
            move = next(generator)
            for ai, results in turns:
                if _interrupted(results):  # its process died in a call it did not rerun: the move is made again
                    rerun = f"Running again, as a new call, what a worker crash interrupted: {_names(ai)}."
                    continue
                rerun = ""
                move = generator.send(_answer(move, ai, results))
        except StopIteration as stop:
            finish = stop.value if isinstance(stop.value, Finish) else Finish(summary=str(stop.value or ""))
            if replies:
                finish = replace(finish, summary=f"{replies}\n{finish.summary}")
            return self._finish(finish, is_sub, facts)
        return _as_message(move, facts, turn=len(turns), preface="\n".join(p for p in (replies, rerun) if p))

    @staticmethod
    def _finish(finish: Finish, is_sub: bool, facts: RunFacts) -> AIMessage:
        findings = [f.model_dump() for f in finish.findings]
        if is_sub:
            name = SUBMIT_RESULT
            args: dict[str, Any] = {"summary": finish.summary, "findings": findings,
                                    "artifacts": list(finish.artifacts), "status": finish.status}
        else:  # the lead concludes its step: done only when the playbook's work was done
            name = FINISH_STEP
            args = {"status": _VERDICTS[finish.status], "summary": finish.summary, "reason": finish.reason,
                    "findings": findings}
        return AIMessage(content=finish.summary,
                         tool_calls=[{"name": name, "args": args, "id": f"{facts.scope}.result", "type": "tool_call"}])


def _scope_start(messages: list[BaseMessage], facts: RunFacts, is_sub: bool) -> int:
    """Index just after the human message that opened this step (lead) or delegation (sub-agent)."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, HumanMessage) and isinstance(message.content, str):
            if is_sub or message.content.startswith(f"{STEP_MARK}{facts.step} (round {facts.round})"):
                return index + 1
    raise ValueError(f"no opening message for {facts.agent} in {facts.scope}")


def _brief(message: BaseMessage) -> Brief:
    fields = dict(_BRIEF_RE.findall(message.content if isinstance(message.content, str) else ""))
    return Brief(task=fields.get("Task", ""), context=fields.get("Context", ""),
                 expected_output=fields.get("Expected output", ""))


def _outcomes(messages: list[BaseMessage]) -> tuple[tuple[str, str, str], ...]:
    """The lead's own ``finish_step`` verdicts in its conversation, the latest round of each step."""
    latest: dict[str, tuple[str, str, str]] = {}
    for message in messages:
        for tool_call in message.tool_calls if isinstance(message, AIMessage) else []:
            if tool_call["name"] == FINISH_STEP:
                step = str(tool_call["id"] or "").split(".r", 1)[0]
                args = tool_call["args"]
                latest[step] = (step, str(args.get("status", "done")), str(args.get("reason", "")))
    return tuple(latest.values())


def _notes(message: BaseMessage) -> list[str]:
    text = message.content if isinstance(message.content, str) else ""
    return [line.removeprefix("User message: ") for line in text.splitlines() if line.startswith("User message: ")]


def _turns(messages: list[BaseMessage]) -> list[tuple[AIMessage, dict[str, ToolMessage]]]:
    """The planner's own past answers in this scope, each with the tool results that answered it."""
    turns: list[tuple[AIMessage, dict[str, ToolMessage]]] = []
    for message in messages:
        if isinstance(message, AIMessage):
            turns.append((message, {}))
        elif isinstance(message, ToolMessage) and turns:
            turns[-1][1][message.tool_call_id] = message
    return turns


def _interrupted(results: dict[str, ToolMessage]) -> bool:
    """A result of the turn says its call was interrupted by a crash and not run again (``INTERRUPTED_MARK``).

    The playbooks' calls are safe to make again (their shell commands are dry runs, tests, builds), so the
    planner makes the same move as new calls, on the record; an LLM reads the same result and decides."""
    return any(isinstance(m.content, str) and m.content.startswith(f"Error: {INTERRUPTED_MARK}")
               for m in results.values())


def _names(ai: AIMessage) -> str:
    return ", ".join(call["name"] for call in ai.tool_calls)


def _parse(content: Any) -> Any:
    text = content if isinstance(content, str) else json.dumps(content)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _answer(move: Any, ai: AIMessage, results: dict[str, ToolMessage]) -> Any:
    """What to send back into the playbook for the move it made in that turn."""
    ids = [call["id"] for call in ai.tool_calls]
    replies = [results.get(i) for i in ids]
    if isinstance(move, Handoff):
        reply = replies[0] if replies else None
        if reply is None:
            return "Error: the handoff returned no result"
        try:
            return HandoffResult.model_validate_json(reply.content if isinstance(reply.content, str) else "")
        except ValidationError:
            return reply.content
    parsed = [_parse(reply.content) if reply is not None else "Error: no result" for reply in replies]
    return parsed if isinstance(move, list) else (parsed[0] if parsed else None)


def _as_message(move: Any, facts: RunFacts, *, turn: int, preface: str = "") -> AIMessage:
    calls = move if isinstance(move, list) else [move]
    tool_calls = []
    for index, item in enumerate(calls):
        call_id = f"{facts.scope}.t{turn}.{index}"
        if isinstance(item, Handoff):
            tool_calls.append({"name": HANDOFF_PREFIX + item.to.replace("-", "_"), "args": item.brief.model_dump(),
                               "id": call_id, "type": "tool_call"})
        elif isinstance(item, Call):
            tool_calls.append({"name": item.name, "args": dict(item.args), "id": call_id, "type": "tool_call"})
        else:
            raise TypeError(f"a playbook yielded {item!r}; yield Call, a list of Call, or Handoff")
    names = ", ".join(call["name"] for call in tool_calls)
    return AIMessage(content=f"{preface}\n\nNext: {names}" if preface else f"Next: {names}", tool_calls=tool_calls)
