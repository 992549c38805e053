"""The journal of a run: model turns and tool results, keyed so that a replayed node reuses them.

A node that is re-executed (after an interrupt is resumed, or after its process was killed) replays
its conversation from here: the model is not asked again and no tool runs twice.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, message_to_dict, messages_from_dict
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from orchestrator.db.models import ModelTurn, ToolCall, utcnow

__all__ = ["find_model_turn", "save_model_turn", "find_tool_call", "save_tool_call"]


def find_model_turn(session: Session, *, mission_id: str, key: str) -> AIMessage | None:
    row = session.scalar(select(ModelTurn).where(ModelTurn.mission_id == mission_id, ModelTurn.key == key))
    if row is None:
        return None
    (message,) = messages_from_dict([row.message])
    assert isinstance(message, AIMessage)
    return message


def save_model_turn(session: Session, *, mission_id: str, key: str, message: AIMessage) -> None:
    usage = message.usage_metadata or {}
    # Core inserts: the journal is written on every turn and never updated.
    session.connection().execute(insert(ModelTurn), {
        "mission_id": mission_id, "key": key, "message": message_to_dict(message), "created_at": utcnow(),
        "input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens")})


def find_tool_call(session: Session, *, mission_id: str, call_id: str) -> ToolCall | None:
    return session.scalar(select(ToolCall).where(ToolCall.mission_id == mission_id, ToolCall.call_id == call_id))


def save_tool_call(session: Session, **fields: Any) -> None:
    session.connection().execute(insert(ToolCall), {"created_at": utcnow(), **fields})
