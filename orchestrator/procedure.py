"""The ML engineer's procedure, declared once: steps and their order, each step's lead and handoff targets,
the failure-mode edges with their limits, the human gates and the outcomes.

The graph is built from this declaration (its nodes, and where each may go), the drawn graph shows exactly
these edges, and the CLI, the API and the web page read the step list from it. Nothing else names a step.

    align -> design -> implement -> evaluate -> package -> release -> release_gate -> report -> end
      any step may hand off to its declared sub-agents (transfer_to_<agent>) and gets their typed result
      evaluate --underperforms--> data-scientist --> evaluate     (max_eval_rounds, then review)
      package  --compliance-->    package again                   (max_compliance_rounds, then blocked)
      any step --infrastructure--> devops-engineer --> next step
      any step --access_denied-->  manual_plan --> next step      (once per mission)
      any step failed / blocked / unusable input --> review (a human) --> next step | end
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from langgraph.graph import END

from agents.spec import LEAD_AGENT, SUB_AGENTS, AgentName

__all__ = [
    "StepName", "StepStatus", "MissionStatus", "Outcome", "TERMINAL", "STEPS", "StepDecl", "FailureEdge",
    "GateDecl", "PROCEDURE", "Procedure", "NODES", "step_decl",
]

StepName = Literal["align", "design", "implement", "evaluate", "package", "release", "report", "manual_plan"]
"""Every step the lead agent runs: the six of the seed's Operating Procedure, the report, and the detour."""
StepStatus = Literal["pending", "running", "waiting", "done", "failed", "blocked", "rejected", "skipped"]
"""``waiting``: finished, its outcome waiting for a human at a gate. ``done`` only when the work was done."""
MissionStatus = Literal["queued", "running", "waiting_approval", "completed", "completed_with_risks", "failed",
                        "blocked", "rejected", "cancelled"]
Outcome = Literal["completed", "completed_with_risks", "failed", "blocked", "rejected", "cancelled"]
"""How a mission ended: ``completed_with_risks`` when a human accepted a failed check to go on."""
TERMINAL: frozenset[str] = frozenset(get_args(Outcome))
AFTER_DETOUR = "__after__"
"""A detour's ``next``: back to the next step of the step that took it."""


@dataclass(frozen=True)
class StepDecl:
    """One step of the procedure."""

    name: StepName
    title: str
    lead: AgentName
    handoffs: tuple[AgentName, ...]
    """Sub-agents the lead may delegate to during this step."""
    next: str
    """The node that follows when the step is done."""
    item: int | None = None
    """Index of the Operating Procedure item the step carries out (None: not one of the six)."""
    listed: bool = True
    """Shown in the step list from the start (a detour is shown only once taken)."""


@dataclass(frozen=True)
class FailureEdge:
    """A failure mode of the seed, raised by a tool or a sub-agent, and the edge the graph takes for it."""

    signal: str
    """The signal kind (``tools.context.SignalKind``) that takes this edge."""
    steps: tuple[StepName, ...]
    """Steps whose outcome takes it (every lead step when empty)."""
    to: str
    """The node it goes to (``"same"``: the step itself, again)."""
    then: str
    """Where the flow goes after ``to``: ``"same"`` (the step again) or ``"next"`` (the step's next node)."""
    limit: str | None = None
    """The setting that bounds how often it is taken (``Settings`` attribute)."""
    on_limit: str | None = None
    """The node (or outcome) once the limit is reached."""
    description: str = ""


@dataclass(frozen=True)
class GateDecl:
    """A human decision point: an approval row and an ``interrupt()``."""

    name: str
    question: str
    on_approve: str
    """``"next"``: the next node of the step under review; else a node name."""
    on_reject: Outcome | None
    """The mission's outcome when rejected (None: the outcome of the step under review)."""
    on_changes: str
    """Where "request changes" goes: the step runs again with the comment as an instruction."""


@dataclass(frozen=True)
class Procedure:
    """The whole procedure; :data:`PROCEDURE` is the one instance."""

    steps: tuple[StepDecl, ...]
    edges: tuple[FailureEdge, ...]
    gates: tuple[GateDecl, ...]

    def step(self, name: str) -> StepDecl:
        for decl in self.steps:
            if decl.name == name:
                return decl
        raise KeyError(f"{name!r} is not a step of the procedure ({', '.join(self.step_names)})")

    def edge(self, signal: str) -> FailureEdge:
        return next(e for e in self.edges if e.signal == signal)

    def gate(self, name: str) -> GateDecl:
        return next(g for g in self.gates if g.name == name)

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @property
    def listed(self) -> tuple[str, ...]:
        """The steps a mission shows from the start, in order."""
        return tuple(s.name for s in self.steps if s.listed)

    @property
    def nodes(self) -> tuple[str, ...]:
        return (*self.step_names, *(g.name for g in self.gates), *SUB_AGENTS)

    def destinations(self, node: str) -> dict[str, str]:
        """Every node ``node`` may go to, each with the edge's label: the drawn graph's edges."""
        out: dict[str, str] = {}

        def add(target: str, label: str) -> None:
            if label not in out.get(target, "").split(", "):
                out[target] = f"{out[target]}, {label}" if target in out else label

        if node in self.step_names:
            decl = self.step(node)
            for target in self._after(decl):
                add(target, "done")
            for agent in decl.handoffs:
                add(agent, "handoff")
            for edge in self._edges_of(decl):
                add(edge.to if edge.to != "same" else node, edge.signal)
                if edge.on_limit:
                    add(edge.on_limit, f"{edge.signal} (limit)")
            add("review", "failed or blocked")
        elif node in SUB_AGENTS:
            for decl in self.steps:
                if node in decl.handoffs:
                    add(decl.name, "result")
                for edge in self._edges_of(decl):
                    if edge.to == node:
                        for target in ((decl.name,) if edge.then == "same" else self._after(decl)):
                            add(target, edge.signal)
        else:
            gate = self.gate(node)
            under_review = [d for d in self.steps if d.listed]
            for target in ([gate.on_approve] if gate.on_approve != "next"
                           else [t for d in under_review for t in self._after(d)]):
                add(target, "approved")
            for target in ([gate.on_changes] if gate.on_changes != "same" else [d.name for d in under_review]):
                add(target, "changes requested")
            add(END, "rejected")
        return out

    def _after(self, decl: StepDecl) -> tuple[str, ...]:
        """Where a finished step goes next; a detour returns to the next step of the step that took it."""
        if decl.next != AFTER_DETOUR:
            return (decl.next,)
        return tuple(dict.fromkeys(d.next for d in self.steps if d.listed and d.next != END))

    def _edges_of(self, decl: StepDecl) -> list[FailureEdge]:
        if not decl.listed:  # a detour takes no failure edge of its own but the review
            return []
        return [e for e in self.edges if not e.steps or decl.name in e.steps]

PROCEDURE = Procedure(
    steps=(
        StepDecl("align", "Align", LEAD_AGENT, ("data-scientist", "security-expert"), "design", item=0),
        StepDecl("design", "Design", LEAD_AGENT, ("backend-developer", "data-scientist", "devops-engineer"),
                 "implement", item=1),
        StepDecl("implement", "Implement", LEAD_AGENT, ("data-scientist", "backend-developer", "devops-engineer"),
                 "evaluate", item=2),
        StepDecl("evaluate", "Evaluate", LEAD_AGENT, ("data-scientist",), "package", item=3),
        StepDecl("package", "Package", LEAD_AGENT, ("security-expert", "devops-engineer"), "release", item=4),
        StepDecl("release", "Release", LEAD_AGENT, ("devops-engineer", "security-expert", "backend-developer"),
                 "release_gate", item=5),
        StepDecl("report", "Report", LEAD_AGENT, (), END),
        StepDecl("manual_plan", "Manual plan", LEAD_AGENT, (), AFTER_DETOUR, listed=False),
    ),
    edges=(
        FailureEdge("underperforms", ("evaluate",), "data-scientist", "same", limit="max_eval_rounds",
                    on_limit="review", description="Model underperforms: the Data Scientist retrains or adjusts "
                                                   "features, then evaluation runs again."),
        FailureEdge("compliance", ("package",), "same", "same", limit="max_compliance_rounds",
                    on_limit=END, description="A security finding blocks release: package again with "
                                                        "the findings resolved, else the mission is blocked."),
        FailureEdge("infrastructure", (), "devops-engineer", "next", description="Infrastructure limitation: "
                    "DevOps proposes the scaling that fits, then the procedure goes on."),
        FailureEdge("access_denied", (), "manual_plan", "next", limit="once",
                    description="Tool access denied: write a manual plan, then go on."),
        FailureEdge("unusable_input", (), "review", "next", description="A prerequisite cannot be used: stop "
                    "and ask a human, with the evidence and a manual plan."),
    ),
    gates=(
        GateDecl("review", "A step failed or was blocked: continue with the risk recorded?", on_approve="next",
                 on_reject=None, on_changes="same"),
        GateDecl("release_gate", "Approve the release: shadow -> canary -> promote as planned?",
                 on_approve="report", on_reject="rejected", on_changes="release"),
    ),
)

STEPS: tuple[str, ...] = PROCEDURE.listed
"""The steps a mission lists from the start (the six of the procedure and the report), in order."""
NODES: tuple[str, ...] = PROCEDURE.nodes


def step_decl(name: str) -> StepDecl:
    """The declaration of step ``name``."""
    return PROCEDURE.step(name)
