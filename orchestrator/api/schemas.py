"""Request and response bodies of the API (``XCreate`` in, ``XPublic`` out), with OpenAPI examples."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MissionCreate", "MissionSummary", "MissionPage", "MissionPublic", "MessageCreate", "EventPublic",
    "AuditEventPublic", "AuditVerifyPublic", "StepPublic", "DelegationPublic", "ApprovalPublic",
    "ApprovalDecisionCreate", "ArtifactPublic", "TaskPublic", "ToolCallPublic", "GraphNode", "GraphEdge",
    "DelegationGraphPublic", "AgentPublic", "WorkspacePublic", "WorkspaceCreate", "MePublic", "Problem",
    "HealthPublic",
]

_MISSION_EXAMPLE = ("Mission: Productionize the anomaly model as a nightly batch scoring job\n"
                    "Inputs: data/reference.csv, data/current.csv, models/model.joblib\n"
                    "Constraints: 2-hour window; alert on drift")
_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _examples(*items: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(items)})


class MissionCreate(BaseModel):
    """A mission to queue: chat text and a workspace directory under the configured roots."""

    model_config = _examples({"text": _MISSION_EXAMPLE, "workspace": "demo"})
    text: str = Field(min_length=1, max_length=20_000, description="Mission chat text (the seed's form or free text).")
    workspace: str = Field(min_length=1, max_length=1000,
                           description="Directory under a workspace root: absolute, or relative to the first root.")


class MissionSummary(BaseModel):
    """One line of a mission: what a list shows and what create returns."""

    model_config = _examples({"id": "3f9c0a1b2c4d", "status": "queued", "current_step": None, "owner": "ci-bot",
                              "workspace": "/srv/orchestrator/workspaces/demo", "objective": "Productionize ...",
                              "created_at": "2025-01-01T00:00:00+00:00", "error": None})
    id: str
    status: str
    current_step: str | None
    owner: str
    workspace: str
    objective: str
    created_at: str | None
    error: str | None


class MissionPage(BaseModel):
    """A page of missions, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[MissionSummary]
    next_cursor: str | None


class StepPublic(BaseModel):
    name: str
    title: str
    status: str
    """pending, running, waiting (for a person at a gate), done, failed, blocked, rejected or skipped."""
    reason: str | None
    """Why the step is not done, in words a user can act on."""
    rounds: int
    summary: str | None
    started_at: str | None
    finished_at: str | None
    duration_s: float | None


class _DelegationFacts(BaseModel):
    """What one handoff carried and cost: shared by the delegation record and the graph edge."""

    id: int
    step: str
    reason: str
    status: str
    brief: dict[str, Any]
    result: dict[str, Any] | None
    started_at: str | None
    finished_at: str | None
    duration_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    from_sha256: str
    to_sha256: str


class DelegationPublic(_DelegationFacts):
    from_agent: str
    to_agent: str
    checkpoint_id: str | None


class ApprovalPublic(BaseModel):
    """A human gate and the exact payload (and its hash) a decision must quote."""

    model_config = _examples({"id": 1, "mission_id": "3f9c0a1b2c4d", "kind": "release", "step": "release",
                              "agent": "ml-engineer", "question": "Approve the release?", "payload": {"plan": "..."},
                              "payload_sha256": _SHA, "status": "pending", "decided_by": None, "decided_at": None,
                              "comment": None, "created_at": "2025-01-01T00:00:00+00:00"})
    id: int
    mission_id: str
    kind: str
    step: str
    agent: str
    question: str
    payload: dict[str, Any]
    payload_sha256: str
    status: str
    decided_by: str | None
    decided_at: str | None
    comment: str | None
    created_at: str | None


class ApprovalDecisionCreate(BaseModel):
    """A decision on one gate; it must quote the payload hash the approver was shown."""

    model_config = _examples({"decision": "approve", "comment": "plan reviewed", "payload_sha256": _SHA})
    decision: Literal["approve", "reject", "request_changes"]
    """``request_changes`` runs the step again with ``comment`` as the reviewer's instruction."""
    comment: str | None = Field(default=None, max_length=4000)
    payload_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the payload shown.")


class ArtifactPublic(BaseModel):
    path: str
    sha256: str
    size: int
    kind: str
    agent: str
    step: str
    created_at: str | None


class TaskPublic(BaseModel):
    id: int
    title: str
    status: str
    agent: str
    step: str
    notes: str
    links: list[Any]


class AuditSummary(BaseModel):
    intact: bool
    events: int
    head: str
    first_bad_seq: int | None
    reason: str


class CheckPublic(BaseModel):
    """One check of the mission report: what was checked, pass or fail, and the figures."""

    name: str
    status: Literal["pass", "fail"]
    detail: str


class MissionPublic(BaseModel):
    """The stable JSON of a mission (as ``orchestrator missions show --json``) plus its pending gates."""

    id: str
    status: str
    """queued, running, waiting_approval, completed, completed_with_risks, failed, blocked, rejected, cancelled."""
    reason: str | None
    """Why the mission ended as it did (or what it waits for), in words a user can act on."""
    current_step: str | None
    error: str | None
    """The same as ``reason`` (kept for clients written before it)."""
    text: str
    spec: dict[str, Any]
    workspace: str
    owner: str
    model: str
    created_at: str | None
    updated_at: str | None
    parent_id: str | None = None
    """The mission this one was forked from (``orchestrator fork``), which holds its record up to the fork."""
    steps: list[StepPublic]
    delegations: list[DelegationPublic]
    approvals: list[ApprovalPublic]
    artifacts: list[ArtifactPublic]
    tasks: list[TaskPublic]
    audit: AuditSummary
    checks: list[CheckPublic]
    """The mission report's checks, as recorded when the report was written (empty before)."""
    pending_approvals: list[ApprovalPublic]


class MessageCreate(BaseModel):
    """A note for the lead agent; it reads it when its next step starts."""

    model_config = _examples({"text": "Use the 2-hour window, not 3."})
    text: str = Field(min_length=1, max_length=8000)


class EventPublic(BaseModel):
    """One row of the mission's audit trail."""

    model_config = _examples({"seq": 1, "mission_id": "3f9c0a1b2c4d", "kind": "mission.queued", "agent": "ci-bot",
                              "step": None, "delegation_id": None, "ts": "2025-01-01T00:00:00+00:00",
                              "payload": {"text": "Mission: ..."}})
    seq: int
    mission_id: str
    kind: str
    agent: str
    step: str | None
    delegation_id: int | None
    ts: str | None
    payload: dict[str, Any]


class AuditEventPublic(EventPublic):
    """An event with its place in the hash chain."""

    id: int
    prev_hash: str
    hash: str


class AuditVerifyPublic(BaseModel):
    """The verdict on the mission's hash chain: intact, or the first entry that does not match."""

    model_config = _examples({"intact": True, "events": 42, "first_bad_seq": None, "first_bad_id": None,
                              "reason": "", "head": _SHA})
    intact: bool
    events: int
    first_bad_seq: int | None
    first_bad_id: int | None
    reason: str
    head: str


class ToolCallPublic(BaseModel):
    """A tool call as the policy layer recorded it; ``result`` is already redacted."""

    id: int
    call_id: str
    tool: str
    agent: str
    step: str
    delegation_id: int | None
    status: str
    decision: str
    duration_ms: float
    sandboxed: bool | None
    result: str
    created_at: str | None


class GraphNode(BaseModel):
    id: str
    label: str
    kind: Literal["lead", "sub"]


class GraphEdge(_DelegationFacts):
    """One delegation, drawn as an edge from the agent who asked to the agent who did it."""

    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str


class DelegationGraphPublic(BaseModel):
    """Nodes (every agent that appears, lead first) and edges (delegations in order), ready to draw."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


class AgentPublic(BaseModel):
    name: str
    title: str
    description: str
    sha256: str
    tools: list[str]
    tooling_profile: str | None
    model: str | None
    maturity_level: str


class WorkspacePublic(BaseModel):
    name: str
    path: str


class WorkspaceCreate(BaseModel):
    """A new workspace under the first root: empty, or the offline demo (data, model, mission inputs)."""

    model_config = _examples({"name": "demo-1", "template": "demo"})
    name: str = Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)
    template: Literal["empty", "demo"] = "empty"


class MePublic(BaseModel):
    name: str
    role: str


class HealthPublic(BaseModel):
    status: str
    detail: str = ""


class Problem(BaseModel):
    """An error, as ``application/problem+json`` (RFC 9457)."""

    model_config = _examples({"type": "about:blank", "title": "Not Found", "status": 404,
                              "detail": "no mission with id 'abc'"})
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None
