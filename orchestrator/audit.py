"""The audit trail: append-only, hash-chained events, one chain per mission, anchored on the mission row.

Each event stores the hash of the previous one; the hash covers every field of the event, so editing,
deleting or reordering any row breaks the chain at that row. The chain's head (seq and hash of its last
event) is written on the mission row in the same transaction as each event, so deleting the tail, or the
whole trail, shows too; a :class:`SignedHead` exported to a user anchors the chain outside the database.
:func:`verify_chain` names the first missing or altered entry, and checks that the mission's and its
approvals' own columns say what their events say.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from orchestrator.db.direct import Statement, Writer, dialect_name
from orchestrator.db.models import Approval, Event, Mission, utcnow
from orchestrator.errors import InputError, MissionNotFound

__all__ = ["AppendedEvent", "append_event", "start_chain", "verify_chain", "ChainReport", "GENESIS", "event_hash", "SignedHead",
           "signed_head", "head_key"]

GENESIS = "0" * 64


def _iso(ts: datetime) -> str:
    # SQLite hands back naive datetimes; every timestamp we write is UTC.
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def event_hash(*, mission_id: str, seq: int, ts: datetime, kind: str, actor: str, step: str | None,
               delegation_id: int | None, payload: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 over the canonical JSON of every field of an event and its predecessor's hash."""
    return hashlib.sha256(_canonical({
        "mission_id": mission_id, "seq": seq, "ts": _iso(ts), "kind": kind, "actor": actor, "step": step,
        "delegation_id": delegation_id, "payload": payload, "prev_hash": prev_hash,
    })).hexdigest()


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, _transaction: object) -> None:
    """The cached chain heads are only valid inside the transaction that holds the append lock."""
    session.info.pop("chain_heads", None)


_COLUMNS = ("mission_id", "seq", "ts", "kind", "actor", "step", "delegation_id", "payload", "prev_hash", "hash")
_HEAD = Statement("SELECT chain_seq, chain_head FROM missions WHERE id = :id", Mission.__table__,
                  returns=("chain_seq", "chain_head"))
# PostgreSQL: the row lock serialises appends per mission (SQLite holds the write lock from BEGIN).
_HEAD_LOCKED = Statement(_HEAD.sql + " FOR UPDATE", Mission.__table__, returns=("chain_seq", "chain_head"))
_INSERT = Statement(f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
                    "RETURNING id", Event.__table__, returns=("id",))
_ADVANCE = Statement("UPDATE missions SET chain_seq = :seq, chain_head = :hash WHERE id = :mission_id",
                     Mission.__table__, params={"seq": "chain_seq", "hash": "chain_head", "mission_id": "id"})


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
    """Append one event to the mission's chain and move the head on its row, in the caller's transaction."""
    heads: dict[str, tuple[int, str]] = session.info.setdefault("chain_heads", {})
    if mission_id in heads:  # appended before in this transaction, which still holds the lock
        seq, prev = heads[mission_id][0] + 1, heads[mission_id][1]
    else:
        read = _HEAD if dialect_name(session) == "sqlite" else _HEAD_LOCKED
        found = read.run(session, {"id": mission_id})
        if not found:
            raise MissionNotFound(f"no mission with id {mission_id!r}: its audit chain has nowhere to anchor")
        seq, prev = found[0][0] + 1, found[0][1]
    values = _linked(mission_id, seq, prev, kind=kind, actor=actor, step=step, delegation_id=delegation_id,
                     payload=payload)
    ((event_id,),) = _INSERT.run(session, values)
    _ADVANCE.run(session, values)
    heads[mission_id] = (seq, values["hash"])
    return AppendedEvent(id=event_id, **values)


def start_chain(session: Writer, *, mission_id: str, kind: str, actor: str, payload: dict[str, Any],
                anchor: Callable[[int, str], None]) -> AppendedEvent:
    """A new mission's first event: ``anchor(seq, hash)`` writes the mission's row already pointing at it (a
    row its events need first), then the event is inserted, in the caller's transaction. No head is read and
    none moved: a create costs two statements less than a row at genesis plus :func:`append_event`."""
    values = _linked(mission_id, 1, GENESIS, kind=kind, actor=actor, step=None, delegation_id=None, payload=payload)
    anchor(1, values["hash"])
    ((event_id,),) = _INSERT.run(session, values)
    session.info.setdefault("chain_heads", {})[mission_id] = (1, values["hash"])
    return AppendedEvent(id=event_id, **values)


def _linked(mission_id: str, seq: int, prev: str, *, kind: str, actor: str, step: str | None,
            delegation_id: int | None, payload: dict[str, Any] | None) -> dict[str, Any]:
    """An event's column values, its hash linking it to ``prev``."""
    payload = json.loads(json.dumps(payload or {}, default=str))
    values = {"mission_id": mission_id, "seq": seq, "ts": utcnow(), "kind": kind, "actor": actor, "step": step,
              "delegation_id": delegation_id, "payload": payload, "prev_hash": prev}
    values["hash"] = event_hash(**values)
    return values


@dataclass(frozen=True)
class SignedHead:
    """A chain head a user keeps outside the database: the chain must still reach it, with the same hash."""

    mission_id: str
    seq: int
    hash: str
    signature: str
    """HMAC-SHA256 of the other three fields, keyed by :func:`head_key`: a head cannot be made up."""

    @staticmethod
    def _mac(key: bytes, mission_id: str, seq: int, hash_: str) -> str:
        return hmac.new(key, _canonical({"mission_id": mission_id, "seq": seq, "hash": hash_}),
                        hashlib.sha256).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, *, key: bytes, source: str = "the head") -> SignedHead:
        """Parse and authenticate an exported head; :class:`InputError` saying what is wrong otherwise."""
        try:
            data = json.loads(text)
            head = cls(mission_id=str(data["mission_id"]), seq=int(data["seq"]), hash=str(data["hash"]),
                       signature=str(data["signature"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"{source} is not an exported audit head (JSON with mission_id, seq, hash and "
                             f"signature, from `orchestrator audit head ID`): {exc!r}") from None
        if not hmac.compare_digest(head.signature, cls._mac(key, head.mission_id, head.seq, head.hash)):
            raise InputError(f"{source}: its signature does not match (edited, or signed with another key than "
                             "this service's ORCH_AUDIT_HEAD_KEY)")
        return head


def head_key(*, configured: str | None, home: Path) -> bytes:
    """The key signing exported heads: the configured one, else a random one kept in ``home/audit-head.key``."""
    if configured:
        return configured.encode("utf-8")
    path = home / "audit-head.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    key = secrets.token_hex(32).encode("ascii")
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def signed_head(session: Session, mission_id: str, *, key: bytes) -> SignedHead:
    """The mission's current chain head, signed (verify it first: a broken chain has no head to vouch for)."""
    row = session.execute(select(Mission.chain_seq, Mission.chain_head).where(Mission.id == mission_id)).first()
    if row is None:
        raise MissionNotFound(f"no mission with id {mission_id!r} (see `orchestrator missions list`)")
    seq, hash_ = row
    return SignedHead(mission_id, seq, hash_, SignedHead._mac(key, mission_id, seq, hash_))


@dataclass(frozen=True)
class ChainReport:
    """The verdict on one mission's chain."""

    mission_id: str
    intact: bool
    events: int
    first_bad_seq: int | None = None
    """Seq of the first missing or altered event, or of the event a tampered row contradicts."""
    first_bad_id: int | None = None
    """Row id of that event, when it still exists."""
    reason: str = ""
    head: str = GENESIS
    entry: str = ""
    """The first bad entry in words: ``event seq 7 (row id 31)``, ``approval 3``, ``mission row``."""

    def describe(self) -> str:
        if self.intact:
            return f"audit chain of mission {self.mission_id} intact: {self.events} events, head {self.head[:16]}"
        return f"audit chain of mission {self.mission_id} BROKEN at {self.entry}: {self.reason}"


class _Bad(Exception):
    def __init__(self, entry: str, reason: str, seq: int | None, row_id: int | None = None) -> None:
        super().__init__(reason)
        self.entry, self.reason, self.seq, self.row_id = entry, reason, seq, row_id


def _event_entry(seq: int, row_id: int | None) -> str:
    return f"event seq {seq}" + (f" (row id {row_id})" if row_id is not None else " (missing)")


_EventRow = AppendedEvent
"""An event as verification reads it: the same columns as appended."""


class _MissionRow(NamedTuple):
    text: str
    spec: dict[str, Any]
    workspace: str
    model: str | None
    owner: str
    status: str
    error: str | None
    chain_seq: int
    chain_head: str


class _ApprovalRow(NamedTuple):
    id: int
    kind: str
    step: str | None
    agent: str | None
    question: str | None
    payload: dict[str, Any]
    payload_sha256: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None


def _select(table: Any, columns: tuple[str, ...], where: str, order: str = "", **params: str) -> Statement:
    return Statement(f"SELECT {', '.join(columns)} FROM {table.name} WHERE {where}{order}", table, returns=columns,
                     params=params)


_EVENTS = _select(Event.__table__, _EventRow._fields, "mission_id = :mission_id", " ORDER BY seq, id")
_MISSION = _select(Mission.__table__, _MissionRow._fields, "id = :mission_id", mission_id="id")
_APPROVALS = _select(Approval.__table__, _ApprovalRow._fields, "mission_id = :mission_id", " ORDER BY id")


class _Verdicts:
    """Verdicts on chains as they were read, keyed by a SHA-256 of everything the verdict rests on (every event's
    fields, the mission row's anchored columns and head, its approvals' columns).

    A verdict is a function of those values alone, so a chain read again with the same values has the same
    verdict, and any edit, deletion or insertion changes the digest and is verified afresh: tamper detection is
    what a full verification gives, at the cost of reading the rows and hashing them once instead of recomputing
    every event's hash (what made every read of a long-running mission slow)."""

    def __init__(self, max_entries: int = 2048) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[bytes, ChainReport]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, mission_id: str, digest: bytes) -> ChainReport | None:
        with self._lock:
            entry = self._entries.get(mission_id)
            if entry is None or entry[0] != digest:
                return None
            self._entries.move_to_end(mission_id)
            return entry[1]

    def put(self, mission_id: str, digest: bytes, report: ChainReport) -> None:
        with self._lock:
            self._entries[mission_id] = (digest, report)
            self._entries.move_to_end(mission_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


_VERDICTS = _Verdicts()


def verify_chain(session: Writer, mission_id: str, *, head: SignedHead | None = None, reuse: bool = False,
                 mission: Any = None, approvals: Sequence[Any] | None = None) -> ChainReport:
    """Recompute every hash of the mission's chain, check its count and head against the mission row (and
    ``head``, an exported one), then the mission's and its approvals' columns against their events.

    ``reuse``: when every value the verdict rests on is what an earlier verification in this process read (same
    SHA-256 over all of them), its verdict is returned without recomputing the hashes (views of a mission).
    ``mission`` and ``approvals``: their rows when the caller read them already in this transaction.
    """
    params = {"mission_id": mission_id}
    rows = [_EventRow(*row) for row in _EVENTS.run(session, params)]
    if mission is None:
        found = _MISSION.run(session, params)
        mission = _MissionRow(*found[0]) if found else None
    else:
        mission = _MissionRow(*(getattr(mission, name) for name in _MissionRow._fields))
    if approvals is None:
        approvals = [_ApprovalRow(*row) for row in _APPROVALS.run(session, params)]
    else:
        approvals = [_ApprovalRow(*(getattr(row, name) for name in _ApprovalRow._fields)) for row in approvals]
    digest = b""
    if reuse and head is None:
        digest = hashlib.sha256(repr((rows, mission, approvals)).encode("utf-8")).digest()
        if (known := _VERDICTS.get(mission_id, digest)) is not None:
            return known
    report = _verdict(mission_id, rows, mission, approvals, head)
    if digest:
        _VERDICTS.put(mission_id, digest, report)
    return report


def _verdict(mission_id: str, rows: list[_EventRow], mission: _MissionRow | None, approvals: Sequence[_ApprovalRow],
             head: SignedHead | None) -> ChainReport:
    prev = GENESIS
    try:
        for expected_seq, row in enumerate(rows, start=1):
            _check_link(row, expected_seq, prev)
            prev = row.hash
        _check_anchor(mission_id, mission, rows, head)
        _check_mission_row(mission, rows)  # type: ignore[arg-type]  # _check_anchor raised when it is None
        _check_approvals(approvals, rows)
    except _Bad as bad:
        return ChainReport(mission_id, False, len(rows), bad.seq, bad.row_id, bad.reason, prev, bad.entry)
    return ChainReport(mission_id, True, len(rows), head=prev)


def _check_link(row: _EventRow, expected_seq: int, prev: str) -> None:
    if row.seq != expected_seq:
        if row.seq > expected_seq:  # name the first one that is gone
            raise _Bad(_event_entry(expected_seq, None), f"event seq {expected_seq} is missing (the next one "
                       f"is seq {row.seq}, row id {row.id})", expected_seq)
        raise _Bad(_event_entry(row.seq, row.id), f"sequence number {row.seq} where {expected_seq} was "
                   "expected (a row was moved)", row.seq, row.id)
    if row.prev_hash != prev:
        raise _Bad(_event_entry(row.seq, row.id), "its prev_hash does not match the previous entry's hash "
                   "(rows were reordered or one was replaced)", row.seq, row.id)
    recomputed = event_hash(mission_id=row.mission_id, seq=row.seq, ts=row.ts, kind=row.kind, actor=row.actor,
                            step=row.step, delegation_id=row.delegation_id, payload=row.payload,
                            prev_hash=row.prev_hash)
    if recomputed != row.hash:
        raise _Bad(_event_entry(row.seq, row.id), "its content does not match its hash (the row was edited)",
                   row.seq, row.id)


def _check_anchor(mission_id: str, mission: _MissionRow | None, rows: list[_EventRow],
                  head: SignedHead | None) -> None:
    if mission is None:
        raise _Bad("mission row", f"the mission row of {mission_id} is missing (its chain head was on it)", None)
    anchor = (mission.chain_seq, mission.chain_head)
    heads = [(anchor[0], anchor[1], "the head on the mission row")]
    if head is not None:  # checked first: it was kept outside the database
        if head.mission_id != mission_id:
            raise InputError(f"the exported head is for mission {head.mission_id!r}, not {mission_id!r}")
        heads.insert(0, (head.seq, head.hash, "the exported head"))
    for seq, hash_, where in heads:
        if seq > len(rows):
            missing = len(rows) + 1
            raise _Bad(_event_entry(missing, None), f"event seq {missing} is missing: {where} is at seq {seq} but "
                       f"the trail holds {len(rows)} events (its tail was deleted)", missing)
        if seq and rows[seq - 1].hash != hash_:
            row = rows[seq - 1]
            raise _Bad(_event_entry(seq, row.id), f"its hash is not the one {where} holds (the chain was "
                       "rewritten up to here, or the head was edited)", seq, row.id)
    if anchor[0] < len(rows):
        row = rows[anchor[0]]
        raise _Bad(_event_entry(row.seq, row.id), f"it lies beyond the head on the mission row (seq {anchor[0]}): "
                   "it was added outside the service", row.seq, row.id)


def _payload_error(payload: dict[str, Any]) -> str | None:
    return payload.get("error") or None


def _check_mission_row(mission: _MissionRow, rows: list[_EventRow]) -> None:
    queued = next((r for r in rows if r.kind == "mission.queued"), None)
    if queued is not None:
        recorded = {"text": queued.payload.get("text"), "spec": queued.payload.get("spec"),
                    "workspace": queued.payload.get("workspace"), "model": queued.payload.get("model"),
                    "owner": queued.actor}
        for column, value in recorded.items():
            if getattr(mission, column) != value:
                raise _Bad("mission row", f"its {column} is not what its mission.queued event (seq {queued.seq}) "
                           "recorded", queued.seq, queued.id)
    last = next((r for r in reversed(rows) if r.kind == "mission.status"), None)
    status, error = (last.payload.get("status"), _payload_error(last.payload)) if last else ("queued", None)
    if queued is None and last is None:
        return
    anchor = last or queued
    if mission.status != status:
        raise _Bad("mission row", f"its status is {mission.status!r} but its last status event (seq {anchor.seq}) "
                   f"says {status!r}", anchor.seq, anchor.id)
    if (mission.error or None) != error:
        raise _Bad("mission row", f"its error is not the one its last status event (seq {anchor.seq}) recorded",
                   anchor.seq, anchor.id)


def _check_approvals(approvals: Sequence[_ApprovalRow], rows: list[_EventRow]) -> None:
    requested: dict[int, _EventRow] = {}
    decided: dict[int, _EventRow] = {}
    for row in rows:
        if row.kind in ("approval.requested", "approval.decided"):
            target = requested if row.kind == "approval.requested" else decided
            target.setdefault(row.payload.get("approval_id"), row)
    for approval in approvals:
        entry = f"approval {approval.id}"
        asked = requested.pop(approval.id, None)
        if asked is None:
            raise _Bad(entry, "no approval.requested event records it (it was added outside the service)", None)
        p = asked.payload
        if (approval.kind, approval.step, approval.agent, approval.question, approval.payload_sha256) != (
                p.get("kind"), asked.step, asked.actor, p.get("question"), p.get("payload_sha256")):
            raise _Bad(entry, f"it differs from its approval.requested event (seq {asked.seq})", asked.seq, asked.id)
        if hashlib.sha256(_canonical(approval.payload)).hexdigest() != approval.payload_sha256:
            raise _Bad(entry, "its payload does not match its payload_sha256", asked.seq, asked.id)
        decision = decided.pop(approval.id, None)
        if decision is None:
            undecided = (approval.status, approval.decided_by, approval.decided_at, approval.comment)
            if undecided != ("pending", None, None, None):
                raise _Bad(entry, f"it says {approval.status} by {approval.decided_by!r} but no approval.decided "
                           "event records a decision", asked.seq, asked.id)
            continue
        d = decision.payload
        for column, value in (("status", d.get("decision")), ("decided_by", decision.actor),
                              ("comment", d.get("comment"))):
            if getattr(approval, column) != value:
                raise _Bad(entry, f"its {column} is {getattr(approval, column)!r} but its approval.decided event "
                           f"(seq {decision.seq}) says {value!r}", decision.seq, decision.id)
    for orphans in (requested, decided):
        for approval_id, row in orphans.items():
            raise _Bad(f"approval {approval_id}", f"its row is missing (event seq {row.seq} records it)",
                       row.seq, row.id)

