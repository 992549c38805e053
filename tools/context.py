"""What a tool knows about the run it serves: the workspace, who is calling, and where to record.

Tools receive a :class:`ToolContext` as an injected argument (hidden from the model's schema), so the
same module-level tool functions serve every mission without globals.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from langchain_core.tools import InjectedToolArg
from pydantic import SkipValidation

from orchestrator.config import Settings

__all__ = ["ToolContext", "Ctx", "Recorder", "Signal", "SignalKind", "ArtifactRef"]

SignalKind = Literal["underperforms", "infrastructure", "compliance", "access_denied", "unusable_input"]
"""The seed's failure modes; a tool raises one and the graph routes along the matching edge."""


@dataclass(frozen=True)
class Signal:
    """A failure mode raised by a tool, read by the graph's conditional edges."""

    kind: SignalKind
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactRef:
    """A file a tool wrote, as recorded."""

    path: str
    sha256: str
    size: int
    kind: str


class Recorder(Protocol):
    """Where tools record what they did; the orchestrator's implementation writes database rows."""

    def artifact(self, *, path: str, sha256: str, size: int, kind: str, agent: str, step: str) -> None: ...

    def task_create(self, *, title: str, agent: str, step: str, notes: str = "", links: list[str] | None = None) -> dict[str, Any]: ...

    def task_update(self, *, task_id: int, status: str | None = None, notes: str | None = None, links: list[str] | None = None) -> dict[str, Any]: ...

    def task_list(self) -> list[dict[str, Any]]: ...


@dataclass
class ToolContext:
    """The run-scoped facts a tool call needs."""

    workspace: Path
    """The mission's workspace; every path a tool touches is confined to it."""
    mission_id: str
    agent: str
    """Name of the calling agent (as in its definition)."""
    step: str
    """Procedure step the call belongs to."""
    settings: Settings
    recorder: Recorder
    delegation_id: int | None = None
    signals: list[Signal] = field(default_factory=list)
    """Failure modes raised during this call; drained by the agent loop after each call."""
    call_id: str | None = None
    """The tool call this context serves: the idempotency key of its effects (tasks, artifact records)."""
    attempt: int = 1
    """2 or more when the call is retried because its process died while it ran: effects already made by an
    earlier attempt are found by ``call_id`` and not made twice."""
    mission: Any = None
    """The mission's parsed spec (``orchestrator.mission.MissionSpec``) when the caller has it: tools read its
    ``constraint_set`` when no constraint clauses are passed to them (free-text missions)."""

    def signal(self, kind: SignalKind, detail: str, **data: Any) -> None:
        """Raise a failure mode for the graph to route on (e.g. evaluation below threshold)."""
        self.signals.append(Signal(kind=kind, detail=detail, data=data))

    def record_file(self, path: Path, *, kind: str) -> ArtifactRef:
        """Record an existing workspace file as an artifact of this agent and step."""
        data = path.read_bytes()
        rel = path.resolve().relative_to(self.workspace.resolve()).as_posix()
        ref = ArtifactRef(path=rel, sha256=hashlib.sha256(data).hexdigest(), size=len(data), kind=kind)
        self.recorder.artifact(path=ref.path, sha256=ref.sha256, size=ref.size, kind=kind, agent=self.agent, step=self.step)
        return ref

    def write_text(self, rel_path: str, text: str, *, kind: str) -> ArtifactRef:
        """Write a text file inside the workspace (parents created) and record it as an artifact."""
        return self.write_bytes(rel_path, text.encode("utf-8"), kind=kind)

    def write_bytes(self, rel_path: str, data: bytes, *, kind: str) -> ArtifactRef:
        """Write bytes inside the workspace (parents created) and record it as an artifact."""
        from tools.workspace import resolve_in_workspace

        target = resolve_in_workspace(self.workspace, rel_path, for_write=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self.record_file(target, kind=kind)


Ctx = Annotated[ToolContext, InjectedToolArg, SkipValidation]
"""The run context every tool takes as its last, keyword-only argument, hidden from the model's schema.

``SkipValidation``: pydantic cannot validate ``recorder`` (a Protocol), and the executor must pass the very
object it reads signals from afterwards, not a copy.
"""
