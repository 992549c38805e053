"""Fixtures of the ML toolkit tests: demo workspaces built into the tool context's workspace."""

from __future__ import annotations

import pytest

from tools.context import ToolContext
from tools.ml.demo import DemoInfo, build_demo_workspace


@pytest.fixture
def demo(tool_ctx: ToolContext) -> DemoInfo:
    """The demo workspace with an injected shift on a few features."""
    return build_demo_workspace(tool_ctx.workspace)

