"""Which chat model plays an agent: the built-in planner, or any LangChain chat model by ``provider:model``."""

from __future__ import annotations

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
