"""Helpers of the ML toolkit tests; a tiny driver that plays the built-in planner's playbooks against the real tools (no graph).

Calls run through ``tool.invoke({**args, "ctx": ctx})`` with a context for the playing agent and step;
handoffs are answered by driving the target agent's playbook the same way. Each call is checked against
the playing agent's allowlist (its ``tools:`` plus its ``toolingProfile``), as the policy layer would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agents.loader import load_agents
from agents.playbooks import Call, Finish, Handoff, View, playbook_for
from orchestrator.briefs import Brief, HandoffResult
from orchestrator.errors import ToolError
from orchestrator.mission import MissionSpec, parse_mission
from orchestrator.recorder import DatabaseRecorder
from tests.support.missions import MISSION_TEXT
from tools.context import Signal, ToolContext
from tools.registry import tool_by_name, tools_for


@dataclass
class Run:
    """One mission played step by step on a workspace."""

    ctx: ToolContext
    mission: MissionSpec
    signals: list[tuple[str, str, Signal]] = field(default_factory=list)
    """(agent, step, signal) for every failure mode a tool raised."""
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(agent, step, tool name) of every call made."""

    def context(self, agent: str, step: str) -> ToolContext:
        url = self.ctx.settings.resolved_database_url
        return ToolContext(workspace=self.ctx.workspace, mission_id=self.ctx.mission_id, agent=agent, step=step,
                           settings=self.ctx.settings,
                           recorder=DatabaseRecorder(url, self.ctx.mission_id, agent=agent, step=step))

    def step(self, step: str, *, agent: str = "ml-engineer", reason: str = "planned", round_: int = 0,
             brief: Brief | None = None) -> Finish:
        view = View(mission=self.mission, agent=agent, step=step, workspace=self.ctx.workspace, brief=brief,
                    reason=reason, round=round_)
        playbook = playbook_for(agent, step)
        assert playbook is not None, f"no playbook for {agent} in {step}"
        generator = playbook(view)
        try:
            move = next(generator)
            while True:
                move = generator.send(self._answer(move, view))
        except StopIteration as stop:
            assert isinstance(stop.value, Finish)
            return stop.value

    def _answer(self, move: Any, view: View) -> Any:
        if isinstance(move, list):
            return [self._answer(item, view) for item in move]
        if isinstance(move, Handoff):
            finish = self.step(view.step, agent=move.to, brief=move.brief)
            return HandoffResult(summary=finish.summary, findings=finish.findings, artifacts=finish.artifacts,
                                 status=finish.status)
        assert isinstance(move, Call), move
        assert move.name in _allowed(view.agent), f"{view.agent} may not call {move.name}"
        ctx = self.context(view.agent, view.step)
        self.calls.append((view.agent, view.step, move.name))
        try:
            out = tool_by_name(move.name).invoke({**move.args, "ctx": ctx})
        except ToolError as exc:
            out = f"Error: {exc}"
        self.signals += [(view.agent, view.step, s) for s in ctx.signals]
        try:
            return json.loads(out)
        except (TypeError, ValueError):
            return out

    def kinds(self, step: str | None = None) -> list[str]:
        return [s.kind for _, st, s in self.signals if step is None or st == step]


_AGENTS = load_agents()


def _allowed(agent: str) -> set[str]:
    spec = _AGENTS[agent]
    return {t.name for t in tools_for(spec.tools, profile=spec.tooling_profile)}


BATCH_MISSION = MISSION_TEXT

ONLINE_MISSION = """/agent ml-engineer
Mission: Serve the anomaly detection model as an online inference API with drift monitoring.
Inputs: models/anomaly-detector/, pipelines/batch-scoring.yaml.
Constraints: p95 latency under 50 ms; alert on precision drop >5%.
Expected Deliverables: Inference endpoint, monitoring hooks, deployment notes.
"""


def new_run(ctx: ToolContext, text: str = BATCH_MISSION) -> Run:
    return Run(ctx=ctx, mission=parse_mission(text))


PATHS = {"model_path": "models/anomaly-detector", "reference_path": "data/reference.csv",
         "current_path": "data/current.csv"}


def call(tool: Any, ctx: ToolContext, **args: Any) -> dict[str, Any]:
    """Invoke a tool as the agent loop does and parse its JSON result."""
    return json.loads(tool.invoke({**args, "ctx": ctx}))
