"""Mission input: chat text (the seed's invocation form or free text) parsed into a typed spec."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.constraints import ConstraintSet, parse_constraints
from orchestrator.errors import InputError

__all__ = ["MissionSpec", "parse_mission", "ServingMode"]

ServingMode = Literal["batch", "online", "streaming"]

_FIELDS = {
    "mission": "objective",
    "inputs": "inputs",
    "constraints": "constraints",
    "expected deliverables": "deliverables",
    "deliverables": "deliverables",
    "validation": "validation",
}
_FIELD_RE = re.compile(r"^\s*(mission|inputs|constraints|expected deliverables|deliverables|validation)\s*:\s*(.*)$", re.I)
_AGENT_RE = re.compile(r"^\s*/agent\s+(\S+)\s*$", re.I)
_MAX_CHARS = 20_000


class MissionSpec(BaseModel):
    """What the user asked for, in the seed's terms."""

    model_config = ConfigDict(frozen=True)

    text: str
    """The chat text exactly as submitted."""
    agent: str = "ml-engineer"
    """Lead agent named by ``/agent NAME`` (default: the ML engineer)."""
    objective: str
    inputs: list[str] = Field(default_factory=list)
    constraints: list[str] = Field(default_factory=list)
    deliverables: list[str] = Field(default_factory=list)
    validation: list[str] = Field(default_factory=list)

    @cached_property
    def constraint_set(self) -> ConstraintSet:
        """The constraints, typed: read from the ``Constraints:`` items and the rest of the mission's text.

        Computed, not stored: a mission saved before the parser learnt a phrasing reads it when loaded again.
        """
        return parse_constraints(self.constraints, free=self.free_text())

    def free_text(self) -> list[str]:
        """The mission's text outside the ``Constraints:`` and ``Inputs:`` fields."""
        _, collected, free = _sections(self.text)
        loose = free if collected.get("objective") else []  # otherwise the loose lines are the objective
        return [self.objective, *loose, *self.deliverables, *self.validation]

    @property
    def serving_mode(self) -> ServingMode:
        """Batch, online or streaming, as the mission's words say (batch when nothing says otherwise)."""
        words = " ".join([*self.constraints, *self.free_text()]).lower()
        if re.search(r"\b(online|endpoint|rest api|inference api|serving api|http api|web service|api)\b", words):
            return "online"
        if re.search(r"\b(streams?|streaming|kafka|kinesis|pub/?sub|consumer lag|consumer groups?|(?:event|message) topics?|"
                     r"as (?:the )?events arrive)\b", words):
            return "streaming"
        if re.search(r"\b(real[- ]time|latency|requests per second)\b", words) or self.constraint_set.latency:
            return "online"
        return "batch"


_PATH_RE = re.compile(r"(?<![\w/.:@-])((?:[\w.-]+/)+(?:[\w.-]*\w)?/?|[\w-][\w.-]*\.(?:csv|parquet|pq|joblib|pkl|"
                      r"pickle|onnx|skops|ya?ml|json))(?![\w/-])")
_PATH_FOLDERS = ("models/", "data/", "datasets/", "pipelines/", "configs/", "config/", "features/", "notebooks/")
_PATH_SUFFIXES = (".csv", ".parquet", ".pq", ".joblib", ".pkl", ".pickle", ".onnx", ".skops", ".yaml", ".yml",
                  ".json")


def _mentioned_paths(text: str) -> list[str]:
    """Workspace paths a free-text mission mentions: a file with a data, model or config suffix, or a path in a
    folder of the usual layout (not "and/or", "p50/p95" or a URL's parts)."""
    found: list[str] = []
    for match in _PATH_RE.finditer(text):
        path = match.group(1).rstrip(".")
        if (path.lower().endswith(_PATH_SUFFIXES) or path.lower().startswith(_PATH_FOLDERS)) and path not in found:
            found.append(path)
    return found


def _split_list(value: str, *, by_semicolon_only: bool = False) -> list[str]:
    pattern = r";" if by_semicolon_only else r"[;,]"
    parts = [part.strip().rstrip(".").strip() for part in re.split(pattern, value)]
    return [part for part in parts if part]


def _sections(text: str) -> tuple[str, dict[str, list[str]], list[str]]:
    """The lead agent, the lines of each seed field, and the lines before any field."""
    agent = "ml-engineer"
    collected: dict[str, list[str]] = {}
    free: list[str] = []
    current: str | None = None
    for line in text.splitlines():
        if match := _AGENT_RE.match(line):
            agent = match.group(1)
            current = None
            continue
        if match := _FIELD_RE.match(line):
            current = _FIELDS[match.group(1).lower()]
            collected.setdefault(current, []).append(match.group(2).strip())
            continue
        if line.strip():
            (collected.setdefault(current, []) if current else free).append(line.strip())
    return agent, collected, free


def parse_mission(text: str) -> MissionSpec:
    """Parse mission chat text; raises :class:`InputError` for an empty or oversized mission.

    The seed's form (``/agent NAME``, ``Mission:``, ``Inputs:``, ``Constraints:``, ``Expected
    Deliverables:``, ``Validation:``) fills the matching fields; any other text becomes the objective.
    A field may continue on following lines until the next field.
    """
    if text is None or not text.strip():
        raise InputError("the mission is empty: say what to productionize, e.g. 'Mission: ...'")
    if len(text) > _MAX_CHARS:
        raise InputError(f"the mission is {len(text)} characters long; the limit is {_MAX_CHARS}")
    agent, collected, free = _sections(text)
    objective = " ".join(collected.get("objective", [])).strip() or " ".join(free).strip()
    if not objective:
        raise InputError("the mission has no objective: add a 'Mission:' line saying what to do")
    joined = {key: " ".join(lines) for key, lines in collected.items()}
    return MissionSpec(
        text=text,
        agent=agent,
        objective=objective,
        # Free text names its inputs in passing ("the model in models/credit/model.joblib, holdout in data/x.csv").
        inputs=_split_list(joined.get("inputs", "")) or _mentioned_paths(text),
        # Constraints and validation hold commas inside one item ("2-hour window; alert on ...").
        constraints=_split_list(joined.get("constraints", ""), by_semicolon_only=True),
        deliverables=_split_list(joined.get("deliverables", "")),
        validation=_split_list(joined.get("validation", "")),
    )
