"""A scripted chat model: langchain-core's fake whose ``bind_tools`` returns itself (as in langgraph's tests)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class ScriptedChatModel(GenericFakeChatModel):
    """Answers with the scripted messages in order; fails loudly when the script runs out."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def ai(text: str = "", *calls: dict[str, Any], tokens: tuple[int, int] | None = None) -> AIMessage:
    usage = None
    if tokens:
        usage = {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}
    return AIMessage(content=text, tool_calls=list(calls), usage_metadata=usage)


def handoff(agent: str, call_id: str, task: str) -> AIMessage:
    return ai("", call("transfer_to_" + agent.replace("-", "_"), call_id, task=task, context="", expected_output=""))


def submit(call_id: str, summary: str, *, findings: list[dict[str, Any]] | None = None,
           status: str = "completed") -> AIMessage:
    return ai(summary, call("submit_result", call_id, summary=summary, findings=findings or [], artifacts=[],
                            status=status))


class Scripts:
    """One scripted model per agent, for one run in this process (a resumed process: ``PerMissionScripts``)."""

    def __init__(self, scripts: dict[str, Iterable[AIMessage]]) -> None:
        self.models = {name: ScriptedChatModel(messages=iter(list(msgs))) for name, msgs in scripts.items()}

    def factory(self, agent: Any, run: Any) -> ScriptedChatModel:
        try:
            return self.models[agent.name]
        except KeyError:
            raise AssertionError(f"no script for agent {agent.name}") from None
