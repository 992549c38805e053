"""Workspaces: the directories under the first workspace root that missions can run on."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status

from orchestrator.api.deps import ServiceDep, WorkspaceCreator, WorkspaceReader
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.schemas import WorkspaceCreate, WorkspacePublic
from orchestrator.config import Settings
from orchestrator.errors import InputError, InvalidTransition

__all__ = ["router", "resolve_workspace"]

router = APIRouter(prefix="/workspaces", tags=["workspaces"], responses=PROBLEM_RESPONSES)


def resolve_workspace(settings: Settings, value: str) -> Path:
    """A directory under one of the workspace roots (absolute, or relative to the first root)."""
    roots = settings.resolved_workspace_roots
    if "\x00" in value:
        raise InputError("workspace path contains a NUL byte")
    raw = Path(value).expanduser()
    try:
        candidate = (raw if raw.is_absolute() else roots[0] / raw).resolve()
        is_dir = candidate.is_dir()
    except OSError as exc:  # a name too long, a loop of links...
        raise InputError(f"workspace {value[:80]!r} cannot be used: {exc.strerror}") from None
    if not any(root in candidate.parents for root in roots):
        raise InputError(f"workspace {value!r} is not a directory under the workspace roots "
                         f"({', '.join(str(r) for r in roots)})")
    if not is_dir:
        raise InputError(f"workspace {value!r} does not exist or is not a directory (create it with "
                         "POST /api/v1/workspaces)")
    return candidate


@router.get("", response_model=list[WorkspacePublic])
def list_workspaces(service: ServiceDep, caller: WorkspaceReader) -> list[WorkspacePublic]:
    """List the directories under the first workspace root."""
    root = service.settings.resolved_workspace_roots[0]
    if not root.is_dir():
        return []
    return [WorkspacePublic(name=entry.name, path=str(entry)) for entry in sorted(root.iterdir())
            if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith(".")]


@router.post("", response_model=WorkspacePublic, status_code=status.HTTP_201_CREATED)
def create_workspace(body: WorkspaceCreate, service: ServiceDep, caller: WorkspaceCreator) -> WorkspacePublic:
    """Create a workspace under the first root: empty, or the offline demo (data, model, inputs)."""
    root = service.settings.resolved_workspace_roots[0]
    root.mkdir(parents=True, exist_ok=True)
    target = root / body.name
    try:
        target.mkdir()
    except FileExistsError:
        raise InvalidTransition(f"workspace {body.name!r} already exists") from None
    if body.template == "demo":
        from tools.ml.demo import build_demo_workspace

        build_demo_workspace(target)
    return WorkspacePublic(name=body.name, path=str(target))
