"""Scripted missions shared by the graph tests and the subprocess they kill: one script per agent."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from tests.support.fake_chat import ai, call, handoff, submit

MISSION_TEXT = """/agent ml-engineer
Mission: Productionize the anomaly detection model with batch scoring and drift monitoring.
Inputs: models/anomaly-detector/, pipelines/batch-scoring.yaml.
Constraints: Run nightly within 2-hour window; alert on precision drop >5%.
Expected Deliverables: Updated pipelines, monitoring hooks, deployment notes.
Validation: python -m pipelines.batch_scoring --dry-run, integration tests, CI pipeline run.
"""


def full_path() -> dict[str, list[AIMessage]]:
    """Every step, a handoff to each sub-agent and back, file tools on the workspace."""
    return {
        "ml-engineer": [
            handoff("data-scientist", "lead-align-1", "Pin dataset versions and propose thresholds"),
            ai("Aligned with the Data Scientist.", tokens=(120, 30)),
            handoff("backend-developer", "lead-design-1", "Review the batch scoring interface"),
            ai("Design done."),
            ai("", call("write_file", "lead-impl-1", path="pipelines/score.py", content="print('scored')\n")),
            ai("Implemented pipelines/score.py."),
            ai("", call("read_file", "lead-eval-1", path="pipelines/score.py")),
            ai("Evaluated."),
            handoff("security-expert", "lead-pkg-1", "Review secrets and model access"),
            ai("Packaged."),
            handoff("devops-engineer", "lead-rel-1", "Plan the nightly rollout"),
            ai("Release planned."),
            ai("Report written."),
        ],
        "data-scientist": [ai("", call("list_files", "ds-1", path=".")),
                           submit("ds-2", "Reference data pinned; precision floor 0.9.")],
        "backend-developer": [submit("be-1", "Batch interface reviewed: CSV in, CSV out.")],
        "security-expert": [submit("sec-1", "No blocking finding.",
                                   findings=[{"title": "model stored as pickle", "severity": "medium"}])],
        "devops-engineer": [submit("dev-1", "Nightly CronJob, shadow then canary.")],
    }


def slow_tool_path() -> dict[str, list[AIMessage]]:
    """A mission whose implement step runs a counted shell call, then a slow one (to be killed during)."""
    return {
        "ml-engineer": [
            ai("", call("write_file", "k-1", path="counter.txt", content="")),
            ai("Aligned."),
            ai("", call("bash", "k-2", command="echo once >> counter.txt")),
            ai("", call("bash", "k-3", command="sleep 6; echo slow >> counter.txt")),
            ai("Designed."),
            ai("Implemented."), ai("Evaluated."), ai("Packaged."), ai("Released."), ai("Reported."),
        ],
    }


def counted_path() -> dict[str, list[AIMessage]]:
    """A mission whose design step appends one line to a file with the shell, then answers."""
    return {
        "ml-engineer": [
            ai("", call("write_file", "c-1", path="counter.txt", content="")),
            ai("Aligned."),
            ai("", call("bash", "c-2", command="echo once >> counter.txt")),
            ai("Designed."),
            ai("Implemented."), ai("Evaluated."), ai("Packaged."), ai("Released."), ai("Reported."),
        ],
    }


_STEPS = ("align", "design", "implement", "evaluate", "package", "release", "report")

EFFECT_CALLS: dict[str, list[dict[str, Any]]] = {
    # tool killed right after its effect -> the calls of the align step (the last one is the killed one)
    "task_create": [call("task_create", "e-1", title="Pin the reference data", notes="from align")],
    "task_update": [call("task_create", "e-0", title="Pin the reference data"),
                    call("task_update", "e-1", task_id=1, status="done", notes="pinned")],
    "write_file": [call("write_file", "e-1", path="notes/plan.md", content="# Plan\n")],
    "edit_file": [call("write_file", "e-0", path="conf.py", content="threshold = 0.5\n"),
                  call("edit_file", "e-1", path="conf.py", old_text="threshold = 0.5", new_text="threshold = 0.7")],
    "bash": [call("bash", "e-1", command="echo ran >> effects.log")],
    "evaluate_model": [call("evaluate_model", "e-1", model_path="models/binary-model",
                            reference_path="data/reference.csv", current_path="data/current.csv")],
}
"""One side-effecting tool each: ``tests/orchestrator/test_tool_replay.py`` kills the process right after the
last call's effect, before its result is recorded, and checks the effect exists once after the resume."""


def effect_path(tool: str) -> dict[str, list[AIMessage]]:
    """The lead makes the calls of :data:`EFFECT_CALLS` ``tool`` in align, one per turn, then answers each step."""
    return {"ml-engineer": [*(ai("", c) for c in EFFECT_CALLS[tool]), *(ai(f"done {step}") for step in _STEPS)]}


SCRIPTS: dict[str, Any] = {"full_path": full_path, "slow_tool_path": slow_tool_path, "counted_path": counted_path,
                           **{f"effect:{tool}": (lambda tool=tool: effect_path(tool)) for tool in EFFECT_CALLS}}
