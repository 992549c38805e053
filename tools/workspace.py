"""Confinement of paths to a mission's workspace: the one check every file-touching tool goes through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.errors import ToolDenied

__all__ = ["resolve_in_workspace"]


def resolve_in_workspace(workspace: Path, path: str, *, for_write: bool = False) -> Path:
    """Resolve ``path`` (relative to the workspace) and refuse anything that leaves it.

    Refused: absolute paths, ``..`` escapes, symlinks whose target is outside, and non-regular files
    such as devices or FIFOs. Raises :class:`ToolDenied` with a message the model can act on.
    """
    if not path or not path.strip():
        raise ToolDenied("path is empty: give a path relative to the workspace, e.g. 'models/model.joblib'")
    raw = Path(path)
    if raw.is_absolute():
        raise ToolDenied(f"absolute path {path!r} refused: paths are relative to the mission workspace")
    root = workspace.resolve()
    candidate = (root / raw).resolve()
    if candidate != root and root not in candidate.parents:
        raise ToolDenied(f"path {path!r} leaves the workspace and is refused")
    if candidate.exists():
        mode = candidate.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ToolDenied(f"path {path!r} is not a regular file or directory and is refused")
    elif for_write:
        # The nearest existing parent must itself be inside (guards against dangling symlink tricks).
        parent = candidate.parent
        while not parent.exists():
            parent = parent.parent
        if parent != root and root not in parent.resolve().parents:
            raise ToolDenied(f"path {path!r} leaves the workspace and is refused")
    if os.path.islink(root / raw):
        target = (root / raw).resolve()
        if target != root and root not in target.parents:
            raise ToolDenied(f"path {path!r} is a symlink out of the workspace and is refused")
    return candidate
