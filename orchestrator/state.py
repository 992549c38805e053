"""The graph's state: the lead agent's conversation plus the few facts the edges route on."""

from __future__ import annotations

from typing import Any

from langgraph.graph import MessagesState
from typing_extensions import TypedDict

__all__ = ["INITIAL_STATE", "MissionState", "OpenedStep", "PendingHandoff", "Review", "MissionOutcome", "Risk"]


class PendingHandoff(TypedDict):
    """A brief on its way to a sub-agent, and where the result must go back to."""

    to: str
    from_agent: str
    step: str
    """Procedure step the handoff belongs to."""
    reason: str
    """``planned`` (the lead chose it) or a failure mode (``underperforms``, ``infrastructure``, ``compliance``)."""
    brief: dict[str, Any]
    tool_call_id: str | None
    """The ``transfer_to_<agent>`` call it answers; None for a failure-mode edge taken by the graph itself."""
    return_to: str
    """Node that receives the result."""


class OpenedStep(TypedDict):
    """A step started by the closing transaction of the step before it, with what that transaction read."""

    step: str
    round: int
    notes: list[str]
    """User messages not yet shown to the lead."""
    notes_seq: int


class Review(TypedDict):
    """A step that did not do its work, on its way to a human (the ``review`` gate)."""

    step: str
    round: int
    status: str
    """What the step concluded: ``failed`` or ``blocked``."""
    kind: str
    """Why: ``unusable_input``, ``escalation`` (still underperforming), ``failed`` or ``blocked``."""
    reason: str
    evidence: list[dict[str, Any]]
    """The signals behind it (file at fault, fix), for the question, the payload and the manual plan."""
    next: str
    """The node that follows if the human accepts the risk."""


class Risk(TypedDict):
    """A failed or blocked step a human accepted in order to go on."""

    step: str
    status: str
    reason: str
    accepted_by: str


class MissionOutcome(TypedDict):
    """How the mission ended, decided inside the graph; the runner records it as is."""

    status: str
    """An ``orchestrator.procedure.Outcome``."""
    reason: str


class MissionState(MessagesState):
    """State of one mission's graph (``thread_id`` = mission id). ``messages`` is the lead agent's conversation."""

    step: str
    """Current procedure step; written by step nodes."""
    step_open: bool
    """True while the current step is in progress (False once its node finished it); written by step nodes."""
    step_round: int
    """Round of the current step (a step runs again after a failure edge); written by step nodes."""
    opened: OpenedStep | None
    """The next step, when the previous one started it as it finished; read and cleared by that step's node."""
    pending: PendingHandoff | None
    """Set by a step node (or a failure edge) when it hands off; cleared by the sub-agent node."""
    signals: list[dict[str, Any]]
    """Failure modes raised in the step that just finished; written by step nodes, read by their routing."""
    eval_rounds: int
    """Evaluation rounds done; written by the evaluate node."""
    blocked: str | None
    """Why release is blocked (a compliance finding), or None; written by package and by the security result."""
    after: str | None
    """Where to continue once a detour (``manual_plan``) is done; written by the step that took the detour."""
    detours_done: list[str]
    """Detours already taken in this mission (each is taken once); written by step nodes."""
    notes_seq: int
    """Sequence number of the last user message shown to the lead; written by step nodes."""
    review: Review | None
    """The step waiting for a human at the review gate; set by step nodes, cleared by the gate."""
    risks: list[Risk]
    """Failed checks a human accepted; written by the review gate. Any makes the end ``completed_with_risks``."""
    outcome: MissionOutcome | None
    """Terminal outcome decided inside the graph; set by the node that ends the mission."""


INITIAL_STATE: dict[str, Any] = {"messages": [], "step": "", "step_open": False, "pending": None, "signals": [],
                                 "eval_rounds": 0, "blocked": None, "outcome": None, "after": None,
                                 "detours_done": [], "notes_seq": 0, "review": None, "risks": []}
"""Where every mission's graph starts."""
