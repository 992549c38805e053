"""The typed payloads of a handoff: the brief that goes out and the result that comes back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Brief", "HandoffResult", "Finding", "ResultStatus", "Severity", "StepResult", "StepVerdict"]

ResultStatus = Literal["completed", "failed", "blocked", "needs_input"]
StepVerdict = Literal["done", "failed", "blocked"]
"""What the lead concludes of a step: ``done`` only when its work was done."""
Severity = Literal["info", "low", "medium", "high", "critical"]


class Brief(BaseModel):
    """What the delegating agent asks of the sub-agent."""

    model_config = ConfigDict(frozen=True)

    task: str = Field(description="What the sub-agent must do, in one or two sentences.")
    context: str = Field(default="", description="Facts the sub-agent needs: files, figures, constraints.")
    expected_output: str = Field(default="", description="What must come back: files, figures, a verdict.")


class Finding(BaseModel):
    """One observation of a sub-agent, with a severity so that the graph can route on it."""

    model_config = ConfigDict(frozen=True)

    title: str
    severity: Severity = "info"
    detail: str = ""


class HandoffResult(BaseModel):
    """What the sub-agent hands back when it is done."""

    model_config = ConfigDict(frozen=True)

    summary: str = Field(description="What was done and what was found, with the figures.")
    findings: list[Finding] = Field(default_factory=list, description="Observations, each with a severity.")
    artifacts: list[str] = Field(default_factory=list, description="Workspace paths of files produced.")
    status: ResultStatus = Field(default="completed", description="completed, failed, blocked or needs_input.")


class StepResult(BaseModel):
    """What the lead agent concludes of a procedure step (the ``finish_step`` call)."""

    model_config = ConfigDict(frozen=True)

    status: StepVerdict = Field(description="done when the step's work was done and its checks passed; failed "
                                            "when a check failed; blocked when it could not be done at all.")
    summary: str = Field(description="What was done and found, with the figures the tools computed.")
    reason: str = Field(default="", description="When not done: why, naming the file or check, and what to do.")
    findings: list[Finding] = Field(default_factory=list, description="Observations, each with a severity.")
