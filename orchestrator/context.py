"""The run-scoped dependencies every node reaches through LangGraph's runtime context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from agents.spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.mission import MissionSpec

__all__ = ["RunContext", "ModelFactory"]

ModelFactory = Callable[[AgentSpec, "RunContext"], BaseChatModel]
"""Builds the chat model that plays an agent in a run (the settings' choice, or a test's scripted model)."""


@dataclass(frozen=True)
class RunContext:
    """Everything a node needs that is not graph state: settings, definitions, the mission, the model."""

    settings: Settings
    agents: dict[str, AgentSpec]
    mission_id: str
    mission: MissionSpec
    workspace: Path
    model_factory: ModelFactory
    auto_approve_by: str | None = None
    """When set, every gate is approved on the spot and recorded as decided by this actor."""
    fresh: bool = False
    """The run starts the mission from its initial state. No node of a fresh run executes twice (a crash or
    an interrupt ends the run), so none can find journal records of its own: nodes skip those reads."""
    replay: bool = False
    """The mission is re-driven from its record (``orchestrator.replay``): every answer and result comes from
    the journal, and a tool call the record does not have runs nothing."""

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url
