"""Read back what a run recorded, for assertions."""

from __future__ import annotations

from typing import Any

from tools.context import ToolContext


def recorded_artifacts(ctx: ToolContext) -> list[dict[str, Any]]:
    """Artifacts recorded through ``ctx`` (path, sha256, size, kind, agent, step)."""
    return list(ctx.recorder.artifacts)  # type: ignore[attr-defined]
