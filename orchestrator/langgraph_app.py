"""The procedure graph for LangGraph tooling (``langgraph.json``): compiled without a checkpointer.

The service compiles its own copy with the database checkpointer; this module is only for drawing and
inspecting the graph (LangGraph Studio, ``langgraph dev``). Runs need a ``RunContext`` as runtime context.
"""

from __future__ import annotations

from agents.loader import load_agents
from orchestrator.graph import build_graph

__all__ = ["graph"]

graph = build_graph(load_agents()).compile()
