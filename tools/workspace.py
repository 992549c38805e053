"""Confinement of paths to a mission's workspace: the one check every file-touching tool goes through."""

from __future__ import annotations

import stat
from pathlib import Path

from orchestrator.errors import ToolDenied

__all__ = ["resolve_in_workspace", "relative_to_workspace"]


def _inside(root: Path, candidate: Path) -> bool:
    return candidate == root or root in candidate.parents


def resolve_in_workspace(workspace: Path, path: str, *, for_write: bool = False) -> Path:
    """Resolve ``path`` (relative to the workspace) and refuse anything that leaves it.

    Refused: absolute paths, ``..`` escapes, any symlink on the way whose target is outside (including
    dangling ones a write would follow), and non-regular files such as devices or FIFOs. Raises
    :class:`ToolDenied` with a message the model can act on.
    """
    if not path or not path.strip():
        raise ToolDenied("path is empty: give a path relative to the workspace, e.g. 'models/model.joblib'")
    if "\x00" in path:
        raise ToolDenied(f"path {path!r} contains a NUL byte and is refused")
    raw = Path(path)
    if raw.is_absolute() or path.startswith("~"):
        raise ToolDenied(f"absolute path {path!r} refused: paths are relative to the mission workspace")
    root = workspace.resolve()
    # resolve() follows every symlink on the way, dangling ones included, so a link out is caught here.
    candidate = (root / raw).resolve()
    if not _inside(root, candidate):
        kind = "is or goes through a symlink out of" if ".." not in raw.parts else "leaves"
        raise ToolDenied(f"path {path!r} {kind} the workspace and is refused")
    if candidate.exists():
        mode = candidate.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ToolDenied(f"path {path!r} is not a regular file or directory and is refused")
    elif for_write:
        parent = candidate.parent
        while not parent.exists():
            parent = parent.parent
        if not _inside(root, parent.resolve()):
            raise ToolDenied(f"path {path!r} leaves the workspace and is refused")
    return candidate


def relative_to_workspace(workspace: Path, path: Path) -> str:
    """``path`` (already confined) as the POSIX path relative to the workspace that tools report."""
    rel = path.resolve().relative_to(workspace.resolve()).as_posix()
    return rel or "."
