"""The event catalogue: every kind of audit event, with the model of its payload.

The audit trail (``orchestrator.audit``) is the one record every view reads; this module says what its rows
may hold. Writers name a kind from :class:`EventKind`; the SSE schema, the CLI progress, the audit review
and the web page read the same names, and the tests check every recorded payload against its model.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["EventKind", "PAYLOADS", "payload_model", "validate_payload"]


class EventKind(StrEnum):
    """What happened. The value is what the ``events.kind`` column stores."""

    MISSION_QUEUED = "mission.queued"
    MISSION_STATUS = "mission.status"
    MISSION_FORKED = "mission.forked"
    STEP_STARTED = "step.started"
    STEP_FINISHED = "step.finished"
    STEP_SETTLED = "step.settled"
    HANDOFF_STARTED = "handoff.started"
    HANDOFF_FINISHED = "handoff.finished"
    TOOL_CALLED = "tool.called"
    MESSAGE = "message"
    USER_MESSAGE = "user.message"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    RISK_ACCEPTED = "risk.accepted"
    ARTIFACT_WRITTEN = "artifact.written"
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"


class _Payload(BaseModel):
    # Readers ignore fields they do not know; writers add fields only with a default here.
    model_config = ConfigDict(extra="allow")


class MissionQueued(_Payload):
    text: str
    spec: dict[str, Any]
    workspace: str
    model: str


class MissionStatusChanged(_Payload):
    status: str
    error: str | None = None
    """The reason, for a terminal status other than ``completed``."""


class MissionForked(_Payload):
    """The mission starts from another's record (``orchestrator.fork``)."""

    parent_id: str
    from_step: str
    checkpoint_id: str
    """The parent's checkpoint this mission's thread starts from."""
    inherited: list[dict[str, Any]] = []
    """The steps taken over from the parent: ``{step, status, rounds}``."""
    delegations: int = 0
    artifacts: int = 0


class StepStarted(_Payload):
    round: int


class StepFinished(_Payload):
    status: str
    """The step's outcome: done, failed, blocked, or waiting (for a human at a gate)."""
    summary: str = ""
    reason: str | None = None
    duration_s: float | None = None


class StepSettled(_Payload):
    """A step's final status, decided at a gate after it finished (``waiting`` -> done/failed/blocked/rejected)."""

    status: str
    reason: str | None = None


class HandoffStarted(_Payload):
    delegation_id: int | None = None
    to: str
    reason: str
    brief: dict[str, Any]


class HandoffFinished(_Payload):
    delegation_id: int | None = None
    to: str
    status: str
    result: dict[str, Any]


class ToolCalled(_Payload):
    tool: str
    call_id: str
    status: str
    """``ok``, ``error``, ``denied``, or ``interrupted`` (its process died while it ran; not run again)."""
    attempt: int = 1
    """2 or more: run again after its process died while it ran (its keyed effects were made once)."""
    decision: str
    duration_ms: float
    args: dict[str, Any] = {}
    result_preview: str = ""
    source: str | None = None
    """What served the call: ``builtin``, ``builtin:offline-docs`` or ``mcp:<server>`` (``orchestrator.toolset``)."""


class Message(_Payload):
    text: str
    tool_calls: list[str] = []


class UserMessage(_Payload):
    text: str


class ApprovalRequested(_Payload):
    approval_id: int
    kind: str
    question: str
    payload: dict[str, Any]
    payload_sha256: str


class ApprovalDecided(_Payload):
    approval_id: int
    decision: str
    """``approved``, ``rejected`` or ``changes_requested``."""
    comment: str | None = None
    payload_sha256: str


class RiskAccepted(_Payload):
    detail: str
    comment: str | None = None


class ArtifactWritten(_Payload):
    path: str
    sha256: str
    size: int
    kind: str


class TaskChanged(_Payload):
    task_id: int | None = None
    title: str | None = None
    status: str | None = None


PAYLOADS: dict[EventKind, type[_Payload]] = {
    EventKind.MISSION_QUEUED: MissionQueued,
    EventKind.MISSION_STATUS: MissionStatusChanged,
    EventKind.MISSION_FORKED: MissionForked,
    EventKind.STEP_STARTED: StepStarted,
    EventKind.STEP_FINISHED: StepFinished,
    EventKind.STEP_SETTLED: StepSettled,
    EventKind.HANDOFF_STARTED: HandoffStarted,
    EventKind.HANDOFF_FINISHED: HandoffFinished,
    EventKind.TOOL_CALLED: ToolCalled,
    EventKind.MESSAGE: Message,
    EventKind.USER_MESSAGE: UserMessage,
    EventKind.APPROVAL_REQUESTED: ApprovalRequested,
    EventKind.APPROVAL_DECIDED: ApprovalDecided,
    EventKind.RISK_ACCEPTED: RiskAccepted,
    EventKind.ARTIFACT_WRITTEN: ArtifactWritten,
    EventKind.TASK_CREATED: TaskChanged,
    EventKind.TASK_UPDATED: TaskChanged,
}
"""One payload model per kind."""


def payload_model(kind: str) -> type[BaseModel]:
    """The payload model of ``kind``; an unknown kind is a programming error."""
    return PAYLOADS[EventKind(kind)]


def validate_payload(kind: str, payload: dict[str, Any]) -> BaseModel:
    """Parse a recorded payload with its kind's model (raises ``ValueError``/``ValidationError`` if it does not fit)."""
    return payload_model(kind).model_validate(payload)
