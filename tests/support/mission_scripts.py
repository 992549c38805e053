"""Scripted models per mission: each mission gets its own script, resumed where its journal stops."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage
from sqlalchemy import func, select

from orchestrator.db import session_scope
from orchestrator.db.models import ModelTurn
from tests.support.fake_chat import ScriptedChatModel, ai, call, handoff, submit

ScriptMaker = Callable[[], dict[str, list[AIMessage]]]


def each_step_answered() -> dict[str, list[AIMessage]]:
    """The lead answers once in each of the 7 steps (align ... report); no delegation."""
    return {"ml-engineer": [ai(f"done {step}") for step in
                            ("align", "design", "implement", "evaluate", "package", "release", "report")]}


def with_handoff() -> dict[str, list[AIMessage]]:
    """Like :func:`each_step_answered`, with one delegation to the data scientist in design."""
    lead = [ai("done align"), handoff("data-scientist", "c1", "Profile the reference data"), ai("done design"),
            *[ai(f"done {step}") for step in ("implement", "evaluate", "package", "release", "report")]]
    return {"ml-engineer": lead, "data-scientist": [submit("s1", "reference data profiled", status="completed")]}


def slow_with_side_effects() -> dict[str, list[AIMessage]]:
    """Implement runs two shell commands that append to ``ran.log`` (the second after a pause)."""
    lead = [ai("done align"), ai("done design"),
            ai("", call("bash", "b1", command="echo one >> ran.log")),
            ai("", call("bash", "b2", command="sleep 4 && echo two >> ran.log")),
            ai("done implement"),
            *[ai(f"done {step}") for step in ("evaluate", "package", "release", "report")]]
    return {"ml-engineer": lead}


SCENARIOS: dict[str, ScriptMaker] = {"full": each_step_answered, "handoff": with_handoff, "slow": slow_with_side_effects}


class PerMissionScripts:
    """A model factory: one scripted model per (mission, agent), skipping answers already journaled."""

    def __init__(self, make: ScriptMaker) -> None:
        self.make = make
        self._models: dict[tuple[str, str], ScriptedChatModel] = {}
        self._lock = threading.Lock()

    def factory(self, agent: Any, run: Any) -> ScriptedChatModel:
        key = (run.mission_id, agent.name)
        with self._lock:
            if key not in self._models:
                script = self.make().get(agent.name)
                if script is None:
                    raise AssertionError(f"no script for agent {agent.name}")
                with session_scope(run.database_url) as session:
                    done = session.scalar(select(func.count()).select_from(ModelTurn).where(
                        ModelTurn.mission_id == run.mission_id, ModelTurn.key.like(f"{agent.name}:%"))) or 0
                self._models[key] = ScriptedChatModel(messages=iter(script[done:]))
            return self._models[key]
