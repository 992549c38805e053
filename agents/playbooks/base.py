"""The vocabulary of the built-in planner's playbooks.

A playbook is a generator: it yields the moves an agent makes and receives what each move returned.

    def align(view: View) -> Playbook:
        profile = yield Call("profile_dataset", {"path": "data/reference.csv"})
        both = yield [Call("read_file", {"path": "a"}), Call("read_file", {"path": "b"})]
        result = yield Handoff("data-scientist", Brief(task=...))   # lead agent only
        return Finish(summary=f"{profile['rows']} rows profiled")

The planner replays the generator from the start on every turn, feeding it the results recorded in the
conversation, so a playbook must decide only from its ``view`` and the results it is sent (no clocks,
no randomness). A tool result arrives parsed from JSON when it is JSON, else as the text; a handoff
result arrives as a ``HandoffResult``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.briefs import Brief, Finding, HandoffResult, ResultStatus
from orchestrator.mission import MissionSpec

__all__ = ["Call", "Handoff", "Finish", "View", "Playbook", "PlaybookFn", "Brief", "Finding", "HandoffResult"]


@dataclass(frozen=True)
class Call:
    """Call one tool with these arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Handoff:
    """Delegate to a sub-agent (lead agent only); the result comes back as a ``HandoffResult``."""

    to: str
    brief: Brief


@dataclass(frozen=True)
class Finish:
    """End the turn loop: the agent's final message (and, for a sub-agent, its typed result)."""

    summary: str
    findings: list[Finding] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    status: ResultStatus = "completed"
    reason: str = ""
    """Why the work was not done (file or check, and what to do); empty when ``completed``."""


@dataclass(frozen=True)
class View:
    """What a playbook may look at: the mission, where it stands, and the workspace."""

    mission: MissionSpec
    agent: str
    step: str
    """Procedure step (for a sub-agent: the step it was delegated from)."""
    workspace: Path
    brief: Brief | None = None
    """The brief, when this agent was delegated to."""
    reason: str = "planned"
    """Why this agent was engaged: ``planned``, or a failure mode (``underperforms``, ``compliance``...)."""
    round: int = 0
    """How many times this step has already run (e.g. evaluation rounds)."""
    notes: tuple[str, ...] = ()
    """Messages the user added since the previous step (delivered with this one), oldest first."""
    instructions: tuple[str, ...] = ()
    """Every message the user added to the mission so far, oldest first (``notes`` are the newest)."""
    outcomes: tuple[tuple[str, str, str], ...] = ()
    """(step, status, reason) the lead concluded for each step finished so far, the latest round of each."""


Move = Call | list[Call] | Handoff
Playbook = Generator[Move, Any, Finish]
PlaybookFn = Callable[[View], Playbook]
