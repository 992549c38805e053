"""Structured logs for the service: JSON lines carrying mission, step and agent when known, secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from tools.redaction import RedactingFilter

__all__ = ["configure_logging", "mission_context", "JsonFormatter", "ContextFilter"]

_mission: ContextVar[str | None] = ContextVar("orchestrator_mission", default=None)
_FIELDS = ("mission", "step", "agent")


@contextmanager
def mission_context(mission_id: str | None) -> Iterator[None]:
    """Tag every log line written in this thread or task with the mission id."""
    token = _mission.set(mission_id)
    try:
        yield
    finally:
        _mission.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``mission`` from the context (``extra={"step": ..., "agent": ...}`` adds the others)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "mission", None) is None:
            record.mission = _mission.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, mission/step/agent when set, exc when any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_text or record.exc_info:
            line["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    """Route every logger (uvicorn's included) through one redacting handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(mission)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
