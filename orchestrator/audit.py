"""The audit trail: append-only, hash-chained events, one chain per mission.

Each event stores the hash of the previous one; the hash covers every field of the event, so editing,
deleting or reordering any row breaks the chain at that row, and :func:`verify_chain` names it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from orchestrator.db.direct import Statement, Writer, dialect_name
from orchestrator.db.models import Event, Mission, utcnow

__all__ = ["AppendedEvent", "append_event", "verify_chain", "ChainReport", "GENESIS", "event_hash"]

GENESIS = "0" * 64


def _iso(ts: datetime) -> str:
    # SQLite hands back naive datetimes; every timestamp we write is UTC.
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(*, mission_id: str, seq: int, ts: datetime, kind: str, actor: str, step: str | None,
               delegation_id: int | None, payload: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 over the canonical JSON of every field of an event and its predecessor's hash."""
    body = {
        "mission_id": mission_id, "seq": seq, "ts": _iso(ts), "kind": kind, "actor": actor, "step": step,
        "delegation_id": delegation_id, "payload": payload, "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, _transaction: object) -> None:
    """The cached chain heads are only valid inside the transaction that holds the append lock."""
    session.info.pop("chain_heads", None)


_COLUMNS = ("mission_id", "seq", "ts", "kind", "actor", "step", "delegation_id", "payload", "prev_hash", "hash")
_LAST = Statement("SELECT seq, hash FROM events WHERE mission_id = :mission_id ORDER BY seq DESC LIMIT 1",
                  Event.__table__, returns=("seq", "hash"))
_INSERT = Statement(f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
                    "RETURNING id", Event.__table__, returns=("id",))
_LOCK = Statement("SELECT id FROM missions WHERE id = :id FOR UPDATE", Mission.__table__)


class AppendedEvent(NamedTuple):
    """An event as it was appended (the columns of :class:`Event`, without loading a model instance)."""

    id: int
    mission_id: str
    seq: int
    ts: datetime
    kind: str
    actor: str
    step: str | None
    delegation_id: int | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def append_event(session: Writer, *, mission_id: str, kind: str, actor: str, step: str | None = None,
                 delegation_id: int | None = None, payload: dict[str, Any] | None = None) -> AppendedEvent:
    """Append one event to the mission's chain inside the caller's transaction (a session or a direct one)."""
    heads: dict[str, tuple[int, str]] = session.info.setdefault("chain_heads", {})
    if mission_id in heads:  # appended before in this transaction, which still holds the lock
        seq, prev = heads[mission_id][0] + 1, heads[mission_id][1]
    else:
        if dialect_name(session) != "sqlite":
            # Serialise appends per mission: PostgreSQL row lock (SQLite holds the write lock from BEGIN).
            _LOCK.run(session, {"id": mission_id})
        last = _LAST.run(session, {"mission_id": mission_id})
        seq, prev = (last[0][0] + 1, last[0][1]) if last else (1, GENESIS)
    payload = json.loads(json.dumps(payload or {}, default=str))
    values = {"mission_id": mission_id, "seq": seq, "ts": utcnow(), "kind": kind, "actor": actor, "step": step,
              "delegation_id": delegation_id, "payload": payload, "prev_hash": prev}
    values["hash"] = event_hash(**values)
    ((event_id,),) = _INSERT.run(session, values)
    heads[mission_id] = (seq, values["hash"])
    return AppendedEvent(id=event_id, **values)


@dataclass(frozen=True)
class ChainReport:
    """The verdict on one mission's chain."""

    mission_id: str
    intact: bool
    events: int
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    reason: str = ""
    head: str = GENESIS

    def describe(self) -> str:
        if self.intact:
            return f"audit chain of mission {self.mission_id} intact: {self.events} events, head {self.head[:16]}"
        return (f"audit chain of mission {self.mission_id} BROKEN at event seq {self.first_bad_seq} "
                f"(row id {self.first_bad_id}): {self.reason}")


def verify_chain(session: Session, mission_id: str) -> ChainReport:
    """Recompute every hash of the mission's chain and report the first entry that does not match."""
    rows = session.scalars(select(Event).where(Event.mission_id == mission_id).order_by(Event.seq, Event.id)).all()
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        bad_reason = ""
        if row.seq != expected_seq:
            bad_reason = f"sequence number {row.seq} where {expected_seq} was expected (a row was removed or moved)"
        elif row.prev_hash != prev:
            bad_reason = "its prev_hash does not match the previous entry's hash"
        else:
            recomputed = event_hash(mission_id=row.mission_id, seq=row.seq, ts=row.ts, kind=row.kind, actor=row.actor,
                                    step=row.step, delegation_id=row.delegation_id, payload=row.payload,
                                    prev_hash=row.prev_hash)
            if recomputed != row.hash:
                bad_reason = "its content does not match its hash (the row was edited)"
        if bad_reason:
            return ChainReport(mission_id, False, len(rows), row.seq, row.id, bad_reason, prev)
        prev = row.hash
    return ChainReport(mission_id, True, len(rows), head=prev)
