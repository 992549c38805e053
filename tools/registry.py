"""The one registry of tools: capability names (as written in an agent's ``tools:``) to LangChain tools.

An agent definition names *capabilities* (``Read``, ``Bash``, ``Tavily``...), the way the seed does;
each capability grants one or more concrete tools. ``toolingProfile`` grants a bundle of capabilities.
Unknown names are refused with the list of known ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from langchain_core.tools import BaseTool

from orchestrator.errors import ConfigError

__all__ = ["capabilities", "profiles", "tools_for", "tool_by_name", "all_tools"]


@lru_cache
def capabilities() -> dict[str, tuple[BaseTool, ...]]:
    """Capability name -> the tools it grants. Built once from the tool modules' own tables."""
    from tools import files, ml, search, shell, tasks, tests_runner

    table: dict[str, tuple[BaseTool, ...]] = {}
    for module in (files, shell, tests_runner, tasks, search, ml):
        for name, granted in module.CAPABILITIES.items():
            if name in table:
                raise ConfigError(f"capability {name!r} is declared twice (second time in {module.__name__})")
            table[name] = tuple(granted)
    return table


@lru_cache
def profiles() -> dict[str, tuple[str, ...]]:
    """``toolingProfile`` name -> capability names it adds."""
    from tools import ml

    return {name: tuple(caps) for name, caps in ml.PROFILES.items()}


@lru_cache
def all_tools() -> dict[str, BaseTool]:
    """Tool name -> tool, across every capability."""
    out: dict[str, BaseTool] = {}
    for granted in capabilities().values():
        for tool in granted:
            out[tool.name] = tool
    return out


def tool_by_name(name: str) -> BaseTool:
    """The registered tool called ``name``; unknown names are refused."""
    try:
        return all_tools()[name]
    except KeyError:
        raise ConfigError(f"unknown tool {name!r}; known tools: {', '.join(sorted(all_tools()))}") from None


def tools_for(capability_names: Iterable[str], *, profile: str | None = None) -> list[BaseTool]:
    """The tools granted by these capabilities (and profile), deduplicated, in a stable order."""
    names = list(capability_names)
    if profile:
        if profile not in profiles():
            raise ConfigError(f"unknown toolingProfile {profile!r}; known: {', '.join(sorted(profiles()))}")
        names += list(profiles()[profile])
    table = capabilities()
    seen: dict[str, BaseTool] = {}
    for name in names:
        if name not in table:
            raise ConfigError(f"unknown tool {name!r}; known: {', '.join(sorted(table))}")
        for tool in table[name]:
            seen.setdefault(tool.name, tool)
    return list(seen.values())
