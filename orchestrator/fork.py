"""Fork: a new mission that starts from another's record at one of its steps, e.g. to run evaluation again with
another model, or after fixing data.

The parent's LangGraph thread holds a checkpoint before each node it ran; the one before the step's first run
is copied into the new mission's thread, so the graph continues from there with the conversation, signals and
counters the parent had. The records follow: the steps before it as the parent left them (their status, rounds
and summaries), the delegations they made, the journal of those turns and calls, and the artifacts still in
the workspace; the step itself is opened as its round in the parent was. The new mission's row links to its
parent (``parent_id``) and its trail starts with a ``mission.forked`` event saying from where.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import copy_checkpoint
from langgraph.checkpoint.base.id import uuid6
from sqlalchemy import select

from agents.spec import LEAD_AGENT
from orchestrator.audit import append_event
from orchestrator.db import session_scope
from orchestrator.db.lineage import copy_delegations, read_journal, steps_of, trail, write_journal
from orchestrator.db.missions import create_mission, get_mission, open_round
from orchestrator.db.models import Artifact, Event, Mission, Step
from orchestrator.errors import InputError
from orchestrator.events import EventKind
from orchestrator.procedure import PROCEDURE

__all__ = ["fork_mission", "Fork", "seed_steps", "put_start"]


@dataclass(frozen=True)
class Fork:
    """The new mission and where it came from."""

    mission_id: str
    parent_id: str
    from_step: str
    checkpoint_id: str
    """The parent's checkpoint the new thread starts from."""
    inherited: tuple[str, ...]
    """The steps the new mission has from its parent, as the parent left them."""


def _fork_point(graph: Any, parent_id: str, step: str) -> Any:
    """The snapshot of the parent's thread just before ``step`` first ran."""
    history = list(graph.get_state_history({"configurable": {"thread_id": parent_id}}))
    before = [s for s in history if step in s.next]
    if not before:
        reached = []
        for snapshot in reversed(history):
            for name in snapshot.next:
                if name in PROCEDURE.step_names and name not in reached:
                    reached.append(name)
        raise InputError(f"mission {parent_id} never reached step {step!r}, so it cannot be forked from there; "
                         f"its record has: {', '.join(reached) or 'no step yet'}")
    return before[-1]  # newest first: the last is the earliest


def _inherited(events: list[Event], cutoff: int) -> dict[str, dict[str, Any]]:
    """Each step as the parent's trail left it before event ``cutoff``: status, rounds, summary, reason, times."""
    steps: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.seq >= cutoff or not event.step:
            continue
        if event.kind == EventKind.STEP_STARTED:
            row = steps.setdefault(event.step, {"started_at": event.ts})
            row.update(status="running", rounds=event.payload.get("round"), finished_at=None)
        elif event.kind == EventKind.STEP_FINISHED and event.step in steps:
            steps[event.step].update(status=event.payload.get("status"), summary=event.payload.get("summary"),
                                     reason=event.payload.get("reason"), finished_at=event.ts)
        elif event.kind == EventKind.STEP_SETTLED and event.step in steps:
            steps[event.step].update(status=event.payload.get("status"), reason=event.payload.get("reason"))
    return steps


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def fork_mission(runner: Any, parent_id: str, *, from_step: str, model: str | None = None,
                 workspace: Path | None = None, owner: str = "cli", auto_approve_by: str | None = None) -> Fork:
    """Start a new mission (queued, run it with ``runner.run``) from ``parent_id``'s record before ``from_step``.

    ``model`` is recorded as the new mission's model (the runner that runs it decides which model plays the
    agents); ``workspace`` replaces the parent's (an artifact of the parent is kept only if the same file is
    there).
    """
    if from_step not in PROCEDURE.step_names:
        raise InputError(f"--from {from_step!r} is not a step; the steps are: {', '.join(PROCEDURE.step_names)}")
    with session_scope(runner.url, readonly=True) as session:
        parent = get_mission(session, parent_id)
        facts = {"text": parent.text, "spec": parent.spec, "model": parent.model, "workspace": parent.workspace}
    target = Path(workspace).expanduser().resolve() if workspace is not None else Path(facts["workspace"])
    if not target.is_dir():
        raise InputError(f"workspace {str(target)!r} does not exist or is not a directory")
    snapshot = _fork_point(runner.graph, parent_id, from_step)
    opened = snapshot.values.get("opened") or {}
    saver = runner.graph.checkpointer
    point = saver.get_tuple(snapshot.config)
    with session_scope(runner.url) as session:
        events = trail(session, mission_id=parent_id)
        starts = [e for e in events if e.kind == EventKind.STEP_STARTED and e.step == from_step]
        start = next((e for e in starts if e.payload.get("round") == opened.get("round")), starts[0] if starts else None)
        cutoff = start.seq if start is not None else (events[-1].seq + 1 if events else 1)
        inherited = _inherited(events, cutoff)
        inherited.pop(from_step, None)
        before = [e for e in events if e.seq < cutoff]
        delegations = sorted({e.delegation_id for e in before if e.kind == EventKind.HANDOFF_STARTED and e.delegation_id})

        child = create_mission(session, text=facts["text"], spec=facts["spec"], workspace=str(target), owner=owner,
                               model=model or facts["model"], auto_approve_by=auto_approve_by, parent_id=parent_id)
        mapping = copy_delegations(session, from_mission=parent_id, to_mission=child.id, ids=delegations)
        write_journal(session, read_journal(session, mission_id=parent_id, steps=set(inherited),
                                            delegations=set(delegations)), mission_id=child.id, delegation_map=mapping)
        kept = _copy_artifacts(session, parent_id=parent_id, child_id=child.id, workspace=target,
                               until=start.ts if start is not None else None)
        now_open = seed_steps(session, mission_id=child.id, inherited=inherited, from_step=from_step,
                              round_=int(opened.get("round") or 1), actor=owner,
                              forked={"parent_id": parent_id, "from_step": from_step,
                                      "checkpoint_id": snapshot.config["configurable"]["checkpoint_id"],
                                      "delegations": len(mapping), "artifacts": kept})
        child_id = child.id
    put_start(saver, thread_id=child_id, point=point, opened=now_open, forked_from=parent_id)
    return Fork(mission_id=child_id, parent_id=parent_id, from_step=from_step,
                checkpoint_id=str(point.config["configurable"]["checkpoint_id"]), inherited=tuple(inherited))


def seed_steps(session: Any, *, mission_id: str, inherited: dict[str, dict[str, Any]], from_step: str, round_: int,
               actor: str, forked: dict[str, Any]) -> dict[str, Any]:
    """A fork's records at its start: the inherited steps as given, the ``mission.forked`` event, and
    ``from_step`` opened at ``round_``; returns the opened step (``orchestrator.state.OpenedStep``)."""
    rows = {row.name: row for row in steps_of(session, mission_id=mission_id)}

    def row_of(name: str) -> Step:
        if name not in rows:  # a detour (manual plan) the parent took, or the step forked from
            rows[name] = Step(mission_id=mission_id, name=name, status="pending", rounds=0,
                              position=max(r.position for r in rows.values()) + 1)
            session.add(rows[name])
        return rows[name]

    for name, facts in inherited.items():
        row = row_of(name)
        for key, value in facts.items():
            setattr(row, key, value)
    row_of(from_step).rounds = max(round_ - 1, 0)  # opened below as the parent opened it
    session.flush()
    append_event(session, mission_id=mission_id, kind=EventKind.MISSION_FORKED, actor=actor,
                 payload={**forked, "inherited": [{"step": n, "status": f.get("status"), "rounds": f.get("rounds")}
                                                  for n, f in inherited.items()]})
    seq = session.scalar(select(Mission.chain_seq).where(Mission.id == mission_id)) or 0
    return open_round(session, mission_id=mission_id, step=from_step, actor=LEAD_AGENT, notes_after=seq)


def put_start(saver: Any, *, thread_id: str, point: Any, opened: dict[str, Any], forked_from: str) -> None:
    """Copy checkpoint ``point`` (a ``CheckpointTuple``) as the first of ``thread_id``, its opened step and notes
    position the new mission's own; the writes of the tasks that ran from it stay behind."""
    checkpoint = copy_checkpoint(point.checkpoint)
    checkpoint["id"] = str(uuid6(clock_seq=-1))
    checkpoint["ts"] = datetime.now(UTC).isoformat()
    checkpoint["channel_values"] = {**checkpoint["channel_values"], "opened": opened, "notes_seq": opened["notes_seq"]}
    metadata = {**(point.metadata or {}), "source": "fork", "parents": {},
                "forked_from": {"mission_id": forked_from, "checkpoint_id": point.config["configurable"]["checkpoint_id"]}}
    saver.put({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, checkpoint, metadata,
              dict(checkpoint["channel_versions"]))


def _copy_artifacts(session: Any, *, parent_id: str, child_id: str, workspace: Path,
                    until: datetime | None) -> int:
    """The parent's artifacts written before the fork whose file is in ``workspace`` as recorded; how many."""
    query = select(Artifact).where(Artifact.mission_id == parent_id)
    if until is not None:
        query = query.where(Artifact.created_at <= until)
    kept = 0
    for art in session.scalars(query):
        if _sha256(workspace / art.path) != art.sha256:
            continue
        session.add(Artifact(mission_id=child_id, path=art.path, sha256=art.sha256, size=art.size, kind=art.kind,
                             agent=art.agent, step=art.step, created_at=art.created_at))
        kept += 1
    session.flush()
    return kept
