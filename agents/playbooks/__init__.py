"""Playbooks of the built-in deterministic planner, one module per agent, beside the agents they play."""

from __future__ import annotations

from agents.playbooks.base import Call, Finish, Handoff, Playbook, PlaybookFn, View

__all__ = ["Call", "Finish", "Handoff", "Playbook", "PlaybookFn", "View", "playbook_for", "PLAYBOOKS"]

PLAYBOOKS: dict[str, dict[str, PlaybookFn]] = {}
"""Agent name -> step name (or ``"*"`` for any step) -> playbook. Filled by the agent modules below."""


def _load() -> None:
    from agents.playbooks import (  # noqa: F401  (each module registers itself)
        backend_developer,
        data_scientist,
        devops_engineer,
        ml_engineer,
        security_expert,
    )


def playbook_for(agent: str, step: str) -> PlaybookFn | None:
    """The playbook that plays ``agent`` in ``step``, or None when the planner has none."""
    if not PLAYBOOKS:
        _load()
    by_step = PLAYBOOKS.get(agent, {})
    return by_step.get(step) or by_step.get("*")
