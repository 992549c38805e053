"""The injected run-context argument every ML tool takes last (hidden from the model's schema).

``SkipValidation`` because pydantic cannot build a validator for ``ToolContext.recorder`` (a
non-runtime-checkable ``Protocol``); the context is built by the orchestrator, not by the model.
"""

from __future__ import annotations

from typing import Annotated

from langchain_core.tools import InjectedToolArg
from pydantic import SkipValidation

from tools.context import ToolContext

__all__ = ["Ctx"]

Ctx = Annotated[ToolContext, InjectedToolArg, SkipValidation]
