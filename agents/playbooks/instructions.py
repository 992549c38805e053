"""What the built-in planner makes of the user's messages during a run.

It acts on what it recognises: a change of constraint in any phrasing the constraint parser reads ("use a
1-hour window", "run it every 6 hours", "alert when recall drops more than 3%"), "add a README" and "skip
the Docker image". It says plainly which messages it cannot act on. An LLM reads the messages itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.constraints import amend_clauses, parse_constraints
from orchestrator.mission import MissionSpec

__all__ = ["Instructions", "read_instructions", "reply_to", "CLAUSES_MARK"]

CLAUSES_MARK = "Constraint clauses: "
"""Ends a brief's context with the clauses in force, so a sub-agent's tools use the same constraints."""

_README = re.compile(r"\bread\s?me\b", re.I)
_NO_IMAGE = re.compile(r"\b(skip|no|without|drop|don'?t build|do not build)\b[^.]{0,30}\b(docker|container|image)\b",
                       re.I)


@dataclass(frozen=True)
class Instructions:
    """The user's messages so far, as far as the planner can act on them."""

    clauses: tuple[str, ...]
    """The mission's constraint clauses, amended by every constraint the user stated since."""
    add_readme: bool = False
    skip_container: bool = False


def _understood(text: str) -> tuple[tuple[str, ...], bool, bool]:
    change = parse_constraints(free=[text])
    return change.clauses, bool(_README.search(text)), bool(_NO_IMAGE.search(text))


def read_instructions(mission: MissionSpec, messages: Sequence[str]) -> Instructions:
    """Fold the messages, oldest first, into what the deliverables must follow."""
    current = mission.constraint_set
    # What the mission itself asks for ("... and add a README") counts as much as a message sent later.
    asked = " ".join(mission.free_text())
    clauses, readme, skip = current.clauses, bool(_README.search(asked)), bool(_NO_IMAGE.search(asked))
    for text in messages:
        stated, wants_readme, no_image = _understood(text)
        if stated:
            clauses = amend_clauses(current, parse_constraints(free=[text]))
            current = parse_constraints(list(clauses))
        readme, skip = readme or wants_readme, skip or no_image
    return Instructions(clauses=tuple(clauses), add_readme=readme, skip_container=skip)


def reply_to(text: str) -> str:
    """The planner's answer to one message: what it will do about it, or that it cannot act on it."""
    stated, readme, no_image = _understood(text)
    acts = []
    if stated:
        understood = parse_constraints(list(stated))
        acts.append("the deliverables now follow " + "; ".join(understood.summary() or stated))
    if readme:
        acts.append("a README for the pipeline will be written with the report")
    if no_image:
        acts.append("no Docker image will be built")
    quoted = text if len(text) <= 120 else text[:117] + "..."
    if acts:
        return f"About your message {quoted!r}: " + "; ".join(acts) + "."
    return (f"I cannot act on your message {quoted!r}: the built-in planner acts on run windows, schedules, "
            "latency and budget limits, alert thresholds, 'add a README' and 'skip the Docker image'. "
            "Restate it in those terms, or run the mission with an LLM (ORCH_MODEL) for other instructions.")
