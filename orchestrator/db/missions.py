"""Missions and their procedure steps: creation, status changes and leases, each with its audit event."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from orchestrator.audit import GENESIS, append_event, start_chain
from orchestrator.db.direct import Statement, Writer
from orchestrator.db.models import Event, Mission, Step, utcnow
from orchestrator.errors import InvalidTransition, MissionNotFound
from orchestrator.events import EventKind
from orchestrator.procedure import STEPS, TERMINAL, MissionStatus, StepStatus

__all__ = [
    "MissionStatus", "RunRow", "STEPS", "TERMINAL", "create_mission", "end_mission", "mark_running", "run_row",
    "get_mission", "set_status", "start_step", "finish_step", "settle_step", "step_status", "unread_notes",
    "open_round",
    "claim_next", "claim_mission", "renew_lease", "release_lease",
]



def create_mission(session: Writer, *, text: str, spec: dict[str, Any], workspace: str, owner: str = "cli",
                   model: str = "builtin", auto_approve_by: str | None = None, idempotency_key: str | None = None,
                   request_sha256: str | None = None, parent_id: str | None = None) -> Mission:
    """Insert a queued mission with its pending steps (the procedure's list), and record it.

    Returns the row as written, detached: it is read back through a session's query when one needs to change it.
    """
    now = utcnow()
    values = {"id": uuid.uuid4().hex[:12], "text": text, "spec": spec, "workspace": workspace, "status": "queued",
              "owner": owner, "model": model, "created_at": now, "updated_at": now, "lease_epoch": 0,
              "idempotency_key": idempotency_key, "request_sha256": request_sha256,
              "auto_approve_by": auto_approve_by, "chain_seq": 0, "chain_head": GENESIS, "parent_id": parent_id}

    def anchor(seq: int, head: str) -> None:  # the row, its head already on the first event, then its steps
        values.update(chain_seq=seq, chain_head=head)
        _MISSION.run(session, values)
        _STEPS.run(session, {f"{field}{position}": value for position, name in enumerate(STEPS)
                             for field, value in (("name", name), ("position", position))} | {"mission_id": values["id"]})

    start_chain(session, mission_id=values["id"], kind=EventKind.MISSION_QUEUED, actor=owner,
                payload={"text": text, "spec": spec, "workspace": workspace, "model": model}, anchor=anchor)
    return Mission(**values, current_step=None, error=None, lease_owner=None, lease_expires_at=None)


_MISSION_COLUMNS = ("id", "text", "spec", "workspace", "status", "owner", "model", "created_at", "updated_at",
                    "lease_epoch", "idempotency_key", "request_sha256", "auto_approve_by", "chain_seq", "chain_head",
                    "parent_id")
_MISSION = Statement(f"INSERT INTO missions ({', '.join(_MISSION_COLUMNS)}) "
                     f"VALUES ({', '.join(':' + c for c in _MISSION_COLUMNS)})", Mission.__table__)
"""The mission row (direct: through the ORM's unit of work a create cost a third more)."""


_STEPS = Statement(
    "INSERT INTO steps (mission_id, name, position, status, rounds) VALUES "
    + ", ".join(f"(:mission_id, :name{i}, :position{i}, 'pending', 0)" for i in range(len(STEPS))),
    Step.__table__, params={**{f"name{i}": "name" for i in range(len(STEPS))},
                            **{f"position{i}": "position" for i in range(len(STEPS))}})
"""A new mission's pending steps in one statement (through the ORM, eight objects made half of a create's cost)."""


def get_mission(session: Session, mission_id: str, *, lock: bool = False) -> Mission:
    """The mission with this id, or :class:`MissionNotFound`."""
    stmt = select(Mission).where(Mission.id == mission_id)
    if lock:
        stmt = stmt.with_for_update()
    mission = session.scalar(stmt)
    if mission is None:
        raise MissionNotFound(f"no mission with id {mission_id!r} (see `orchestrator missions list`)")
    return mission


def set_status(session: Session, *, mission_id: str, status: MissionStatus, actor: str,
               error: str | None = None, step: str | None = None) -> Mission:
    """Change a mission's status and record the change; terminal missions do not change again."""
    mission = get_mission(session, mission_id, lock=True)
    if mission.status in TERMINAL and status != mission.status:
        raise InvalidTransition(f"mission {mission_id} is already {mission.status}; it cannot become {status}")
    if mission.status == status and error is None:
        return mission
    mission.status = status
    mission.error = error
    if status in TERMINAL:
        mission.lease_owner = None
        mission.lease_expires_at = None
    _record_status(session, mission_id=mission_id, status=status, actor=actor, error=error, step=step)
    return mission


_END = Statement("UPDATE missions SET status = :status, error = :error, updated_at = :updated_at, "
                 "lease_owner = NULL, lease_expires_at = NULL WHERE id = :id "
                 f"AND status NOT IN ({', '.join(repr(s) for s in sorted(TERMINAL))}) RETURNING id",
                 Mission.__table__, returns=("id",))


def end_mission(session: Writer, *, mission_id: str, status: MissionStatus, actor: str,
                error: str | None = None) -> bool:
    """Record a run's terminal status and release its lease (direct: every run ends this way); False, with
    nothing written, when the mission had already ended (:func:`set_status` says how)."""
    if status not in TERMINAL:
        raise ValueError(f"{status} is not a terminal status")
    if not _END.run(session, {"id": mission_id, "status": status, "error": error, "updated_at": utcnow()}):
        return False
    _record_status(session, mission_id=mission_id, status=status, actor=actor, error=error)
    return True


def _record_status(session: Writer, *, mission_id: str, status: str, actor: str, error: str | None,
                   step: str | None = None) -> None:
    payload: dict[str, Any] = {"status": status}
    if error:
        payload["error"] = error
    append_event(session, mission_id=mission_id, kind=EventKind.MISSION_STATUS, actor=actor, step=step,
                 payload=payload)


_STEP = Statement("SELECT status, rounds FROM steps WHERE mission_id = :mission_id AND name = :name",
                  Step.__table__, returns=("status", "rounds"))
# These run at every step of every mission (orchestrator.db.direct); RETURNING folds the read into the write.
_START = Statement("UPDATE steps SET status = 'running', rounds = rounds + 1, finished_at = NULL, "
                   "started_at = COALESCE(started_at, :started_at) WHERE mission_id = :mission_id AND name = :name "
                   "RETURNING rounds", Step.__table__, returns=("rounds",))
_FINISH = Statement("UPDATE steps SET status = :status, summary = :summary, reason = :reason, "
                    "finished_at = :finished_at WHERE mission_id = :mission_id AND name = :name "
                    "AND status = 'running' AND rounds = :rounds RETURNING started_at", Step.__table__,
                    returns=("started_at",))
_SETTLE = Statement("UPDATE steps SET status = :status, reason = :reason WHERE mission_id = :mission_id "
                    "AND name = :name AND status = 'waiting' AND rounds = :rounds RETURNING id", Step.__table__,
                    returns=("id",))
_LAST_POSITION = Statement("SELECT MAX(position) FROM steps WHERE mission_id = :mission_id", Step.__table__,
                           returns=("position",))
_ADD = Statement("INSERT INTO steps (mission_id, name, position, status, rounds) "
                 "VALUES (:mission_id, :name, :position, 'pending', 0)", Step.__table__)
_CURRENT = Statement("UPDATE missions SET current_step = :current_step, updated_at = :updated_at "
                     "WHERE id = :id", Mission.__table__)


def step_status(session: Writer, *, mission_id: str, name: str) -> tuple[str, int] | None:
    """(status, rounds) of a step, or None when it has no row yet."""
    rows = _STEP.run(session, {"mission_id": mission_id, "name": name})
    return (rows[0][0], rows[0][1]) if rows else None


def start_step(session: Writer, *, mission_id: str, name: str, actor: str) -> int:
    """Mark a step running (again, on a later round) and record it; returns its round (from 1).

    The report step and detours have no row until they first run: theirs is created here.
    """
    now = utcnow()
    params = {"mission_id": mission_id, "name": name, "started_at": now}
    started = _START.run(session, params)
    if not started:
        ((last,),) = _LAST_POSITION.run(session, {"mission_id": mission_id})
        _ADD.run(session, {"mission_id": mission_id, "name": name, "position": (last or 0) + 1})
        started = _START.run(session, params)
    rounds = started[0][0]
    _CURRENT.run(session, {"id": mission_id, "current_step": name, "updated_at": now})
    append_event(session, mission_id=mission_id, kind=EventKind.STEP_STARTED, actor=actor, step=name,
                 payload={"round": rounds})
    return int(rounds)


def finish_step(session: Writer, *, mission_id: str, name: str, round_: int, actor: str,
                status: StepStatus = "done", summary: str = "", reason: str | None = None) -> bool:
    """Mark round ``round_`` of a step with its outcome (done, failed, blocked, or waiting for a gate), its
    summary and, when it is not done, the reason; and record it.

    Returns False, changing nothing, when that round is no longer running: a replayed node finished it before.
    """
    now = utcnow()
    started = _FINISH.run(session, {"mission_id": mission_id, "name": name, "rounds": round_, "status": status,
                                    "summary": summary, "reason": reason, "finished_at": now})
    if not started:
        return False
    began = started[0][0] or now
    payload: dict[str, Any] = {"status": status, "summary": summary,
                               "duration_s": round((now - began).total_seconds(), 3)}
    if reason:
        payload["reason"] = reason
    append_event(session, mission_id=mission_id, kind=EventKind.STEP_FINISHED, actor=actor, step=name,
                 payload=payload)
    return True


def settle_step(session: Writer, *, mission_id: str, name: str, round_: int, actor: str, status: StepStatus,
                reason: str | None = None) -> bool:
    """Give a step that waited at a gate its final status (idempotent: False when already settled)."""
    if not _SETTLE.run(session, {"mission_id": mission_id, "name": name, "rounds": round_, "status": status,
                                 "reason": reason}):
        return False
    payload: dict[str, Any] = {"status": status}
    if reason:
        payload["reason"] = reason
    append_event(session, mission_id=mission_id, kind=EventKind.STEP_SETTLED, actor=actor, step=name,
                 payload=payload)
    return True


_NOTES = Statement("SELECT seq, payload FROM events WHERE mission_id = :mission_id AND kind = 'user.message' "
                   "AND seq > :seq ORDER BY seq", Event.__table__, returns=("seq", "payload"))


def unread_notes(session: Writer, *, mission_id: str, after: int) -> tuple[list[str], int]:
    """The user messages posted after event ``after``, and the seq of the last one."""
    rows = _NOTES.run(session, {"mission_id": mission_id, "seq": after})
    return [str(payload.get("text", "")) for _, payload in rows], (rows[-1][0] if rows else after)


_CLAIM = Statement("UPDATE missions SET lease_owner = :lease_owner, lease_expires_at = :lease_expires_at, "
                   "lease_epoch = lease_epoch + 1 "
                   "WHERE id = :id AND status IN ('queued', 'running') AND (lease_owner IS NULL "
                   "OR lease_owner = :lease_owner OR lease_expires_at < :now) RETURNING lease_epoch",
                   Mission.__table__, params={"now": "lease_expires_at"},
                   returns=("lease_epoch",))


_DROP_LEASE = Statement("UPDATE missions SET lease_owner = NULL, lease_expires_at = NULL "
                        "WHERE id = :id AND lease_owner = :lease_owner", Mission.__table__)


def claim_mission(session: Writer, *, mission_id: str, worker: str, lease_s: float,
                  dead_owner: str | None = None) -> int | None:
    """Take the lease on a queued or running mission if it is free (or its lease expired); returns the new
    lease epoch (every claim makes one: :class:`~orchestrator.db.direct.Fence`), None when someone else holds
    it. ``dead_owner``: a holder known to be dead, whose lease is dropped first."""
    now = utcnow()
    if dead_owner is not None:
        _DROP_LEASE.run(session, {"id": mission_id, "lease_owner": dead_owner})
    claimed = _CLAIM.run(session, {"id": mission_id, "lease_owner": worker, "now": now,
                                   "lease_expires_at": now + timedelta(seconds=lease_s)})
    return claimed[0][0] if claimed else None


class RunRow(NamedTuple):
    """What starting a run needs to know of its mission."""

    status: str
    spec: dict[str, Any]
    workspace: str
    auto_approve_by: str | None
    lease_owner: str | None
    lease_epoch: int


_RUN_ROW = Statement("SELECT status, spec, workspace, auto_approve_by, lease_owner, lease_epoch FROM missions "
                     "WHERE id = :id", Mission.__table__, returns=RunRow._fields)
_RUNNING = Statement("UPDATE missions SET status = 'running', error = NULL, updated_at = :updated_at WHERE id = :id",
                     Mission.__table__)


def run_row(session: Writer, mission_id: str) -> RunRow:
    """The mission's status, spec, workspace and lease (read directly: every run starts here)."""
    rows = _RUN_ROW.run(session, {"id": mission_id})
    if not rows:
        raise MissionNotFound(f"no mission with id {mission_id!r} (see `orchestrator missions list`)")
    return RunRow(*rows[0])


def mark_running(session: Writer, *, mission_id: str, was: str, actor: str) -> None:
    """Record that a run drives the mission now (``was``: its status until now)."""
    if was == "running":
        return
    _RUNNING.run(session, {"id": mission_id, "updated_at": utcnow()})
    _record_status(session, mission_id=mission_id, status="running", actor=actor, error=None)


def claim_next(session: Session, *, worker: str, lease_s: float) -> Mission | None:
    """Claim the oldest runnable mission: queued, or running with an expired lease (its process died).

    On PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP LOCKED`` so that concurrent
    workers never claim the same mission; on SQLite the write lock taken at BEGIN does the same.
    """
    now = utcnow()
    stmt = (
        select(Mission)
        .where(or_(Mission.status == "queued",
                   (Mission.status == "running") & or_(Mission.lease_expires_at < now, Mission.lease_owner.is_(None))))
        .where(or_(Mission.lease_owner.is_(None), Mission.lease_expires_at < now))
        .order_by(Mission.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    mission = session.scalar(stmt)
    if mission is None:
        return None
    mission.lease_owner = worker
    mission.lease_expires_at = now + timedelta(seconds=lease_s)
    mission.lease_epoch += 1
    session.flush()
    return mission


def renew_lease(session: Session, *, mission_id: str, worker: str, lease_s: float,
                epoch: int | None = None) -> bool:
    """Extend the lease this worker holds (at ``epoch``, when given: a later claim, even its own, ends it);
    False when it lost it."""
    held = [Mission.lease_epoch == epoch] if epoch is not None else []
    result = session.execute(
        update(Mission).where(Mission.id == mission_id, Mission.lease_owner == worker, *held)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
    )
    return result.rowcount == 1


def release_lease(session: Session, *, mission_id: str, worker: str) -> None:
    session.execute(update(Mission).where(Mission.id == mission_id, Mission.lease_owner == worker)
                    .values(lease_owner=None, lease_expires_at=None))


def open_round(session: Writer, *, mission_id: str, step: str, actor: str, notes_after: int) -> dict[str, Any]:
    """Open ``step`` for the node that runs it next, in the transaction that ends the node before it; returns
    ``{step, round, notes, notes_seq}`` (``orchestrator.state.OpenedStep``).

    The step's running round is reused when there is one: a node re-executed after a crash (its records
    committed, its checkpoint lost) opens the round it opened the first time, and the step it leads to
    replays that round's journal instead of acting again.
    """
    current = step_status(session, mission_id=mission_id, name=step)
    if current is not None and current[0] == "running":
        rounds = current[1]
    else:
        rounds = start_step(session, mission_id=mission_id, name=step, actor=actor)
    notes, seen = unread_notes(session, mission_id=mission_id, after=notes_after)
    return {"step": step, "round": rounds, "notes": notes, "notes_seq": seen}
