"""Which chat model plays an agent: the built-in planner, or any LangChain chat model by ``provider:model``."""

from __future__ import annotations

from functools import cache
from typing import Any

from langchain_core.language_models import BaseChatModel

from agents.spec import AgentSpec
from orchestrator.context import RunContext
from orchestrator.errors import ConfigError

__all__ = ["resolve_chat_model", "model_name_for", "settings_model_factory"]


def model_name_for(agent: AgentSpec, default: str) -> str:
    """The agent's own ``model:`` when its definition sets one, else the settings' model."""
    return agent.model or default


def resolve_chat_model(name: str, run: RunContext) -> BaseChatModel:
    """``builtin`` -> the deterministic planner; ``provider:model`` -> ``init_chat_model`` with the settings."""
    if name == "builtin":
        from orchestrator.planner import BuiltinPlanner

        return BuiltinPlanner(mission=run.mission)
    if ":" not in name:
        raise ConfigError(f"model {name!r} is not 'builtin' or 'provider:model' (e.g. 'openai:gpt-4o-mini', "
                          "'anthropic:claude-sonnet-4-5', 'ollama:llama3.1')")
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, object] = {}
    if run.settings.model_base_url:
        kwargs["base_url"] = run.settings.model_base_url
    if run.settings.model_api_key is not None:
        kwargs["api_key"] = run.settings.model_api_key.get_secret_value()
    try:
        if name.startswith("openai:"):
            return _openai_chat_model()(model=name.split(":", 1)[1], **kwargs)
        return init_chat_model(name, **kwargs)
    except ImportError as exc:
        provider = name.split(":", 1)[0]
        raise ConfigError(f"model {name!r} needs the langchain-{provider} package: pip install 'ml-orchestrator[llm]' "
                          f"({exc})") from None
    except ValueError as exc:
        raise ConfigError(f"model {name!r} cannot be used: {exc}") from None


def settings_model_factory(agent: AgentSpec, run: RunContext) -> BaseChatModel:
    """The default :data:`ModelFactory`: per-agent ``model:`` or the settings' ``ORCH_MODEL``."""
    return resolve_chat_model(model_name_for(agent, run.settings.model), run)


@cache
def _openai_chat_model() -> type[BaseChatModel]:
    """``ChatOpenAI`` whose chat-completions requests hand the messages and tools to the SDK as ``extra_body``.

    The OpenAI SDK walks every request's parameters against their typed definitions before sending them
    (``openai._utils._transform``), which for a step's conversation and an agent's tools costs several
    milliseconds of CPU per answer, more than everything else a waiting mission does (openai/openai-python#3616;
    the Anthropic SDK's users do the same, anthropics/anthropic-sdk-python#1195). ``extra_body`` is sent as
    given: the JSON on the wire is the same, the walk is skipped.
    """
    from langchain_openai import ChatOpenAI

    class _ChatOpenAI(ChatOpenAI):
        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            if "messages" in payload and "response_format" not in payload and not self._use_responses_api(payload):
                extra = dict(payload.get("extra_body") or {})
                extra["messages"], payload["messages"] = payload["messages"], []
                if "tools" in payload:
                    extra["tools"] = payload.pop("tools")
                payload["extra_body"] = extra
            return payload

    return _ChatOpenAI
