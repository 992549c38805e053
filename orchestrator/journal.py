"""The journal of one node execution: what the model answered and what tools returned, for exact replays.

A node that runs again (after an interrupt is resumed, or after its process died) finds its earlier model
answers and tool results here and replays them: the model is not asked again and no tool runs twice.
A new model answer is buffered and written in the same transaction as the next record of the node (the
tool call it asked for, the approval, the end of the step), since a replay only needs the answers whose
consequences were recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, message_to_dict, messages_from_dict
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.audit import append_event
from orchestrator.db import session_scope
from orchestrator.db.direct import Statement, Transaction, Writer, transaction
from orchestrator.db.models import ModelTurn, ToolCall, utcnow

__all__ = ["Journal", "save_tool_call", "start_tool_call", "STARTED", "INTERRUPTED"]


@dataclass
class _Turn:
    key: str
    message: AIMessage
    agent: str
    step: str
    delegation_id: int | None


@dataclass
class Journal:
    """Replays and records the model turns and tool calls of one agent loop."""

    database_url: str
    mission_id: str
    turns: dict[str, AIMessage] = field(default_factory=dict)
    calls: dict[str, ToolCall] = field(default_factory=dict)
    _pending: list[_Turn] = field(default_factory=list)

    @classmethod
    def load(cls, database_url: str, mission_id: str, *, agent: str, scope: str) -> Journal:
        """What is already recorded for this agent in this scope: nothing, unless the node is replaying."""
        journal = cls(database_url, mission_id)
        prefix = f"{agent}:{scope}:"
        with session_scope(database_url, readonly=True) as session:
            rows = session.execute(select(ModelTurn.key, ModelTurn.message).where(
                ModelTurn.mission_id == mission_id, ModelTurn.key >= prefix, ModelTurn.key < prefix + "\uffff"))
            for key, message in rows:
                (parsed,) = messages_from_dict([message])
                journal.turns[key] = parsed  # type: ignore[assignment]
            call_ids = [c["id"] for turn in journal.turns.values() for c in turn.tool_calls if c["id"]]
            if call_ids:  # tool results are only recorded after the turn that asked for them
                calls = session.scalars(select(ToolCall).where(ToolCall.mission_id == mission_id,
                                                               ToolCall.call_id.in_(call_ids)))
                journal.calls = {row.call_id: row for row in calls}
        return journal

    def add_turn(self, key: str, message: AIMessage, *, agent: str, step: str, delegation_id: int | None) -> None:
        self.turns[key] = message
        self._pending.append(_Turn(key, message, agent, step, delegation_id))

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """A direct transaction (``orchestrator.db.direct``) that first records the buffered model turns,
        then whatever the caller adds; the hot path of every step."""
        with transaction(self.database_url) as tx:
            self._flush_into(tx)
            yield tx

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """Like :meth:`write`, as a Session, for records kept through the ORM (approvals, delegations)."""
        with session_scope(self.database_url) as session:
            self._flush_into(session)
            yield session

    def flush(self) -> None:
        if self._pending:
            with self.write():
                pass

    def _flush_into(self, session: Writer) -> None:
        for turn in self._pending:
            save_model_turn(session, mission_id=self.mission_id, key=turn.key, message=turn.message)
            text = turn.message.content if isinstance(turn.message.content, str) else str(turn.message.content)
            if not text.strip():
                continue  # a turn that only calls tools is shown by its tool.called events
            append_event(session, mission_id=self.mission_id, kind="message", actor=turn.agent, step=turn.step,
                         delegation_id=turn.delegation_id,
                         payload={"text": text, "tool_calls": [c["name"] for c in turn.message.tool_calls]})
        self._pending.clear()


_TURN_COLUMNS = ("mission_id", "key", "message", "input_tokens", "output_tokens", "created_at")
_INSERT_TURN = Statement(f"INSERT INTO model_turns ({', '.join(_TURN_COLUMNS)}) "
                         f"VALUES ({', '.join(':' + c for c in _TURN_COLUMNS)})", ModelTurn.__table__)
_CALL_COLUMNS = ("mission_id", "call_id", "tool", "agent", "step", "delegation_id", "args_sha256", "result",
                 "result_sha256", "status", "decision", "signals", "sandboxed", "duration_ms", "attempts", "created_at")
_INSERT_CALL = Statement(f"INSERT INTO tool_calls ({', '.join(_CALL_COLUMNS)}) "
                         f"VALUES ({', '.join(':' + c for c in _CALL_COLUMNS)})", ToolCall.__table__)
_FINISH_CALL = Statement("UPDATE tool_calls SET result = :result, result_sha256 = :result_sha256, status = :status, "
                         "decision = :decision, signals = :signals, sandboxed = :sandboxed, "
                         "duration_ms = :duration_ms, attempts = :attempts "
                         "WHERE mission_id = :mission_id AND call_id = :call_id", ToolCall.__table__)
_RETRY_CALL = Statement("UPDATE tool_calls SET attempts = :attempts WHERE mission_id = :mission_id "
                        "AND call_id = :call_id AND status = :status", ToolCall.__table__)
STARTED = "started"
"""The status of a tool call that is running, or was when its process died."""
INTERRUPTED = "interrupted"
"""The status of a started call that a resumed run did not run again (its effects could not be keyed)."""


def save_model_turn(session: Writer, *, mission_id: str, key: str, message: AIMessage) -> None:
    usage = message.usage_metadata or {}
    # The journal is written on every turn and never updated: straight to the cursor (orchestrator.db.direct).
    _INSERT_TURN.run(session, {"mission_id": mission_id, "key": key, "message": message_to_dict(message),
                               "created_at": utcnow(), "input_tokens": usage.get("input_tokens"),
                               "output_tokens": usage.get("output_tokens")})


def start_tool_call(session: Writer, *, mission_id: str, call_id: str, tool: str, agent: str, step: str,
                    delegation_id: int | None, args_sha256: str, attempt: int) -> None:
    """Record a call with side effects as ``started`` before it runs (or count the new attempt of a retried one):
    a run resumed after a crash finds it and knows it may have had its effects."""
    if attempt > 1:
        _RETRY_CALL.run(session, {"mission_id": mission_id, "call_id": call_id, "attempts": attempt, "status": STARTED})
        return
    _INSERT_CALL.run(session, {
        "mission_id": mission_id, "call_id": call_id, "tool": tool, "agent": agent, "step": step,
        "delegation_id": delegation_id, "args_sha256": args_sha256, "result": "", "result_sha256": "",
        "status": STARTED, "decision": "allowed", "signals": [], "sandboxed": None, "duration_ms": 0.0,
        "attempts": attempt, "created_at": utcnow()})


def save_tool_call(session: Writer, *, mission_id: str, call_id: str, tool: str, agent: str, step: str,
                   delegation_id: int | None, args_sha256: str, result: str, result_sha256: str, status: str,
                   decision: str, signals: list[dict[str, Any]], sandboxed: bool | None, duration_ms: float,
                   started: bool = False, attempt: int = 1) -> None:
    """Record a finished tool call (its redacted result, digests, decision, signals) under its call id; a call
    recorded as ``started`` gets its row completed."""
    values = {
        "mission_id": mission_id, "call_id": call_id, "tool": tool, "agent": agent, "step": step,
        "delegation_id": delegation_id, "args_sha256": args_sha256, "result": result, "result_sha256": result_sha256,
        "status": status, "decision": decision, "signals": signals, "sandboxed": sandboxed,
        "duration_ms": duration_ms, "attempts": attempt, "created_at": utcnow()}
    (_FINISH_CALL if started else _INSERT_CALL).run(session, values)
