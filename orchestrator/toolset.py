"""The tools an agent works with in one run: the registry's for its capabilities, and its MCP servers' tools.

``Context7``, ``DeepWiki`` and ``MicrosoftDocs`` in ``tools:`` are MCP servers in the agent ecosystem: a
configured server of that name serves the capability; without one (or while it cannot be reached and never
listed its tools) the offline docs lookup of the installed packages does. Which one served a call is in its
``tool.called`` event (``source``).
"""

from __future__ import annotations

from langchain_core.tools import BaseTool

from agents.spec import AgentSpec
from orchestrator.context import RunContext
from orchestrator.handoff import FINISH_STEP, HANDOFF_PREFIX, SUBMIT_RESULT
from orchestrator.mcp_config import DOCS_SERVERS
from tools.registry import tools_for

__all__ = ["tools_of"]


def tools_of(agent: AgentSpec, run: RunContext) -> list[BaseTool]:
    """The agent's tools for this loop, registry tools first; MCP servers are started here when needed."""
    if run.replay:  # the record answers every call; one it does not have meets a stand-in that runs nothing
        from orchestrator.replay import unrecorded

        return unrecorded(tools_for(agent.tools, profile=agent.tooling_profile))
    from orchestrator.mcp_tools import servers_for

    servers = servers_for(agent, run.settings) if (agent.mcp_servers or run.settings.mcp_servers) else {}
    served = [name for name in agent.tools if name in DOCS_SERVERS and name in servers]
    builtin = tools_for([c for c in agent.tools if c not in served], profile=agent.tooling_profile)
    if not servers:
        return builtin
    from orchestrator.mcp_tools import load_servers

    control = [FINISH_STEP, SUBMIT_RESULT, *(HANDOFF_PREFIX + name.replace("-", "_") for name in run.agents)]
    loaded = load_servers(servers, settings=run.settings, taken=[*(t.name for t in builtin), *control])
    fallback = [name for name in served if name in loaded.unavailable]
    if fallback:  # a docs server that cannot be reached: the offline lookup serves its capability meanwhile
        builtin = tools_for([c for c in agent.tools if c not in served or c in fallback],
                            profile=agent.tooling_profile)
    return [*builtin, *loaded.tools]
