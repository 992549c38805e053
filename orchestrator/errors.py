"""Errors, split by who must act: the operator, the user's input, the model, a limit, or a guardrail."""

from __future__ import annotations

__all__ = [
    "OrchestratorError",
    "ConfigError",
    "AgentDefinitionError",
    "InputError",
    "MissionNotFound",
    "InvalidTransition",
    "LimitExceeded",
    "GuardrailViolation",
    "ToolError",
    "ToolDenied",
    "UnusableInput",
    "ApprovalStale",
    "INTERRUPTED_MARK",
]


class OrchestratorError(Exception):
    """Root of every error this service raises on purpose; its message is meant for a person."""

    exit_code: int = 1


class ConfigError(OrchestratorError):
    """The operator's configuration is wrong (settings, model name, database URL)."""

    exit_code = 2


class AgentDefinitionError(ConfigError):
    """An agent definition file is malformed; the message names the file, the field and the fix."""


class InputError(OrchestratorError):
    """The user's input cannot be used (empty mission, missing workspace, bad archive)."""

    exit_code = 2


class MissionNotFound(InputError):
    """No mission has that id."""

    exit_code = 3


class InvalidTransition(InputError):
    """The mission is not in a state that allows this action (e.g. resuming a finished mission)."""

    exit_code = 4


class ApprovalStale(InvalidTransition):
    """The decision quotes a payload hash that is not the one pending."""


class LimitExceeded(OrchestratorError):
    """A guard tripped: too many handoffs, ping-pong on one edge, too many turns, recursion limit."""


class GuardrailViolation(OrchestratorError):
    """A policy refused an action outright (not something an approval can lift)."""


class ToolError(OrchestratorError):
    """A failure the model can act on (missing file, failing tests, timeout); returned to it as the result."""


class ToolDenied(ToolError):
    """The policy layer refused the call (not allowed for this agent, or a human rejected it)."""


class UnusableInput(ToolError):
    """A prerequisite of the mission cannot be used: a model that does not load, data that is missing, empty,
    unreadable or does not match the model, a missing label column or config.

    The procedure stops at the step that met it and asks a human, with a manual plan built from ``path``
    (the workspace file at fault) and ``fix`` (what to do about it, in the user's terms).
    """

    def __init__(self, message: str, *, path: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.fix = fix


INTERRUPTED_MARK = "[interrupted]"
"""Opens the result of a call its process died in and that was not run again (``orchestrator.executor``): the
agent, or the built-in planner, knows the call's effects are unknown and may run it again as a new call."""
