"""Which chat model plays an agent: the built-in planner, or any LangChain chat model by ``provider:model``."""

from __future__ import annotations

from functools import cache, lru_cache
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
    api_key = run.settings.model_api_key.get_secret_value() if run.settings.model_api_key is not None else None
    return _provider_model(name, base_url=run.settings.model_base_url or None, api_key=api_key)


@lru_cache(maxsize=32)
def _provider_model(name: str, *, base_url: str | None, api_key: str | None) -> BaseChatModel:
    """One client per model and endpoint for the process: every agent turn of every mission asked for a new one,
    and building it (validating its settings, making its SDK client) cost more CPU than the turn's request.
    The chat models and their SDK clients hold no per-request state, so the turns of concurrent missions share one."""
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, object] = {}
    if base_url:
        kwargs["base_url"] = base_url
    if api_key is not None:
        kwargs["api_key"] = api_key
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
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            if kwargs.get("strict") is None and not kwargs.get("response_format"):
                tools = [_openai_tool(tool) for tool in tools]
            return super().bind_tools(tools, **kwargs)

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


_TOOL_SCHEMAS: dict[tuple[object, ...], dict[str, Any]] = {}


def _openai_tool(tool: Any) -> Any:
    """A tool as OpenAI's schema, converted once per tool (name, description, arguments' model) per process:
    every step binds its agent's tools again, and converting them cost more CPU than the step's answer."""
    from langchain_core.tools import BaseTool
    from langchain_core.utils.function_calling import convert_to_openai_tool

    if not isinstance(tool, BaseTool) or getattr(tool, "extras", None) or not isinstance(tool.args_schema, type):
        return tool
    key = (type(tool), tool.name, tool.description, tool.args_schema)
    schema = _TOOL_SCHEMAS.get(key)
    if schema is None:
        if len(_TOOL_SCHEMAS) > 4096:  # tools made anew for each call would grow it without end
            _TOOL_SCHEMAS.clear()
        schema = _TOOL_SCHEMAS[key] = convert_to_openai_tool(tool)
    return schema
