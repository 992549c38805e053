"""Request bodies of the LangGraph Platform API subset, as ``langgraph-sdk`` sends them.

Fields the SDK sends that change nothing here are accepted and ignored (tracing, durability...); fields that
would ask for something this server does not do (webhooks, time travel, breakpoints) are refused by the
routes with a message saying so, never silently dropped. A mission goes on when its client disconnects,
whatever ``on_disconnect`` says (every stream can be joined again); cancelling is the run's cancel route.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["THREAD_ID", "ThreadCreate", "ThreadPatch", "ThreadSearch", "HistoryRequest", "AssistantSearch",
           "RunCreate", "Command", "StreamModes"]

THREAD_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
"""What a client may choose as a thread id (a UUID among others)."""
StreamModes = str | list[str]
_MAX_METADATA = 64_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("metadata", check_fields=False)
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, default=str)) > _MAX_METADATA:
            raise ValueError(f"metadata is larger than {_MAX_METADATA} characters of JSON")
        return value


class ThreadCreate(_Body):
    """A new thread; ``metadata.workspace`` names the workspace its mission will run on (or the run says)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"metadata": {"workspace": "demo"}}]})
    thread_id: str | None = Field(default=None, pattern=THREAD_ID)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[dict[str, Any]] | None = None
    ttl: dict[str, Any] | int | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = Field(default=None, max_length=1000)
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class HistoryRequest(_Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


class AssistantSearch(_Body):
    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class Command(_Body):
    """``resume``: the decision on the pending gate. ``goto`` and ``update`` are not offered."""

    resume: Any = None
    goto: Any = None
    update: Any = None


class RunCreate(_Body):
    """A run: ``input.messages`` hold the mission (the thread's first run), or ``command.resume`` decides the
    pending gate; ``context.workspace`` (or the thread's ``metadata.workspace``) names the workspace."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
        {"assistant_id": "ml-engineering", "input": {"messages": [{"role": "user", "content": "Mission: ..."}]},
         "context": {"workspace": "demo"}, "stream_mode": ["updates"]}]})
    assistant_id: str = Field(min_length=1, max_length=200)
    input: Any = None
    command: Command | None = None
    context: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: StreamModes = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: str | list[str] | None = None
    interrupt_after: str | list[str] | None = None
    webhook: str | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    after_seconds: int | None = None
