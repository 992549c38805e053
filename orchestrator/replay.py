"""Replay: re-drive a finished mission's graph from its record and check it takes the same path.

The mission's journal (model turns, tool calls) and its decided gates are copied into a scratch database,
where the graph runs the mission again as a new one: every model answer and tool result comes from the
journal (the executor's replay path), no model is asked (:class:`RecordOnlyModel` raises) and no tool runs
(a call the record does not have meets a stand-in that runs nothing). The replay then has to reproduce the
record's path: each step started and finished with the same round and status, the same delegations, the
same gates settled the same way, the same outcome. The first difference names its step.

A fork (``orchestrator.fork``) replays from where it started: its first checkpoint (the parent's, copied),
the steps and delegations it took over, and the step it was forked from opened as it was.

As workflow engines replay their histories, this is also the regression test of graph changes:
``orchestrator replay --all`` replays every finished mission of a database with today's code.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatResult
from langchain_core.tools import BaseTool
from langgraph.errors import GraphRecursionError
from langgraph.types import Command
from sqlalchemy import select

from agents.loader import load_agents
from orchestrator.checkpoint import open_checkpointer
from orchestrator.config import Settings
from orchestrator.context import RunContext
from orchestrator.db import Base, engine_for, session_scope
from orchestrator.db.approvals import pending_approvals
from orchestrator.db.direct import transaction
from orchestrator.db.lineage import (
    delegation_ids,
    next_delegation_id,
    read_decided_approvals,
    read_delegations,
    read_journal,
    trail,
    write_approvals,
    write_delegations,
    write_journal,
)
from orchestrator.db.missions import create_mission, end_mission, get_mission, mark_running
from orchestrator.db.models import Event, Mission
from orchestrator.errors import InvalidTransition, LimitExceeded, OrchestratorError, ToolError
from orchestrator.events import EventKind
from orchestrator.fork import put_start, seed_steps
from orchestrator.graph import build_graph, first_input
from orchestrator.mission import MissionSpec
from orchestrator.procedure import TERMINAL

__all__ = ["Replayer", "ReplayReport", "RecordOnlyModel", "ReplayDiverged", "replay_mission", "replay_all",
           "unrecorded"]

log = logging.getLogger(__name__)

_MAX_RESUMES = 200


class ReplayDiverged(OrchestratorError):
    """The replay needed a model answer the record does not have: it left the recorded path."""

    def __init__(self, agent: str) -> None:
        super().__init__(f"{agent} was asked for an answer the record does not have")
        self.agent = agent


class RecordOnlyModel(BaseChatModel):
    """The model of every agent in a replay: the journal answers; reaching this model means the path diverged."""

    agent: str

    @property
    def _llm_type(self) -> str:
        return "replay"

    def bind_tools(self, tools: Any, **kwargs: Any) -> RecordOnlyModel:  # type: ignore[override]
        return self

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        raise ReplayDiverged(self.agent)


def _record_only(agent: Any, run: Any) -> RecordOnlyModel:
    return RecordOnlyModel(agent=agent.name)


class _Unrecorded(BaseTool):
    """A tool as a replay offers it: the record answers its calls; one it does not have runs nothing."""

    def _run(self, ctx: Any = None, run_manager: Any = None, **arguments: Any) -> str:
        raise ToolError(f"replay: this call of {self.name} is not in the record; nothing was run")


def unrecorded(tools: list[BaseTool]) -> list[BaseTool]:
    """Stand-ins with the tools' names and schemas that run nothing (``orchestrator.toolset`` in a replay)."""
    return [_Unrecorded(name=t.name, description=t.description, args_schema=t.tool_call_schema.model_json_schema()
                        if not isinstance(t.args_schema, dict) else t.args_schema) for t in tools]


@dataclass(frozen=True)
class ReplayReport:
    """Whether the replay reproduced the record, and where it first did not."""

    mission_id: str
    reproduced: bool
    step: str | None = None
    """The first divergent step (None when reproduced, or when the outcome alone differs)."""
    detail: str = ""
    recorded: str = ""
    """The recorded outcome (status, and reason when there is one)."""
    replayed: str = ""
    compared: int = 0
    """How many path entries (steps started and finished, delegations, gates) were compared."""
    skipped: str | None = None

    def describe(self) -> str:
        if self.skipped:
            return f"mission {self.mission_id}: not replayed: {self.skipped}"
        if self.reproduced:
            return (f"mission {self.mission_id}: replay reproduced the record ({self.compared} path entries, "
                    f"outcome {self.recorded})")
        where = f" at step {self.step}" if self.step else ""
        return f"mission {self.mission_id}: replay diverged{where}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the path a record shows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    kind: str
    step: str | None
    what: str

    def __str__(self) -> str:
        return {"step.started": f"{self.step} started ({self.what})", "step.finished": f"{self.step} finished {self.what}",
                "step.settled": f"{self.step} settled {self.what}", "handoff.started": f"handoff {self.what}",
                "handoff.finished": f"handoff back {self.what}", "risk.accepted": f"risk accepted in {self.step}",
                "mission.status": f"mission {self.what}"}.get(self.kind, f"{self.kind} {self.what}")


def _mark(event: Event) -> _Mark | None:
    p = event.payload
    match event.kind:
        case EventKind.STEP_STARTED:
            return _Mark(event.kind, event.step, f"round {p.get('round')}")
        case EventKind.STEP_FINISHED | EventKind.STEP_SETTLED:
            return _Mark(event.kind, event.step, str(p.get("status")))
        case EventKind.HANDOFF_STARTED:
            return _Mark(event.kind, event.step, f"{event.actor} -> {p.get('to')} ({p.get('reason')})")
        case EventKind.HANDOFF_FINISHED:
            return _Mark(event.kind, event.step, f"{event.actor} -> {p.get('to')} ({p.get('status')})")
        case EventKind.RISK_ACCEPTED:
            return _Mark(event.kind, event.step, "")
        case EventKind.MISSION_STATUS if p.get("status") in TERMINAL:
            return _Mark(event.kind, None, str(p.get("status")))
    return None


def _outcome(status: str, reason: str | None) -> str:
    return f"{status}: {reason}" if reason else status


# -- the replay ---------------------------------------------------------------------------------------------


class Replayer:
    """A scratch database and the compiled graph on it; replays missions of ``settings``' database one by one."""

    def __init__(self, settings: Settings, *, scratch: Path | None = None) -> None:
        self.settings = settings
        self.source_url = settings.resolved_database_url
        self._owned = scratch is None
        self.dir = Path(tempfile.mkdtemp(prefix="orchestrator-replay-")) if scratch is None else scratch
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.dir / 'replay.db'}"
        # The models are the schema (a test checks the migrations match them): no migration run per scratch.
        Base.metadata.create_all(engine_for(self.url))
        self.scratch_settings = settings.model_copy(update={"database_url": self.url, "home": self.dir,
                                                            "mcp_servers": {}})
        self.agents = load_agents(settings.agents_dirs)
        self._saver = open_checkpointer(self.url)
        self._source_saver: Any = None
        self.graph = build_graph(self.agents).compile(checkpointer=self._saver.saver)

    def close(self) -> None:
        self._saver.__exit__(None, None, None)
        if self._source_saver is not None:
            self._source_saver.__exit__(None, None, None)
        engine_for(self.url).dispose()
        if self._owned:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def replay(self, mission_id: str) -> ReplayReport:
        """Replay one finished mission; the report says whether its record was reproduced."""
        with session_scope(self.source_url, readonly=True) as source:
            original = get_mission(source, mission_id)
            if original.status not in TERMINAL:
                raise InvalidTransition(f"mission {mission_id} is {original.status}: only a finished mission can be "
                                        "replayed")
            if original.status == "cancelled":
                return ReplayReport(mission_id, reproduced=False, skipped="cancelled missions stop wherever the "
                                    "cancel found them, which a replay cannot reproduce")
            facts = {"text": original.text, "spec": original.spec, "model": original.model,
                     "auto_approve_by": original.auto_approve_by, "workspace": self.dir / f"ws-{mission_id}"}
            recorded = _outcome(original.status, original.error)
            journal = read_journal(source, mission_id=mission_id)
            approvals = read_decided_approvals(source, mission_id=mission_id)
            delegations = delegation_ids(source, mission_id=mission_id)
            events = trail(source, mission_id=mission_id)
            marks = [m for m in map(_mark, events) if m is not None]
            start = self._fork_start(source, original, events) if original.parent_id else None
            if original.parent_id and start is None:
                return ReplayReport(mission_id, reproduced=False, skipped=f"a fork of mission {original.parent_id} "
                                    "whose starting checkpoint is not on record")
        facts["workspace"].mkdir(exist_ok=True)
        with session_scope(self.url) as scratch:
            copy = create_mission(scratch, text=facts["text"], spec=facts["spec"], workspace=str(facts["workspace"]),
                                  owner="replay", model=facts["model"], auto_approve_by=facts["auto_approve_by"])
            mapping = write_delegations(scratch, start["delegations"], mission_id=copy.id) if start else {}
            base = next_delegation_id(scratch)
            own = [old for old in delegations if old not in mapping]
            write_journal(scratch, journal, mission_id=copy.id,
                          delegation_map={**mapping, **{old: base + i for i, old in enumerate(own)}})
            write_approvals(scratch, approvals, mission_id=copy.id)
            if start:  # a fork starts where its parent's record left it, as fork_mission set it up
                opened = seed_steps(scratch, mission_id=copy.id, inherited=start["inherited"],
                                    from_step=start["from_step"], round_=start["round"], actor="replay",
                                    forked=start["forked"])
            replay_id = copy.id
        if start:
            put_start(self._saver.saver, thread_id=replay_id, point=start["point"], opened=opened,
                      forked_from=mission_id)
        stopped = self._drive(replay_id, facts, fresh_start=start is None)
        with session_scope(self.url, readonly=True) as scratch:
            replayed_row = get_mission(scratch, replay_id)
            replayed = _outcome(replayed_row.status, replayed_row.error)
            replay_events = trail(scratch, mission_id=replay_id)
            current = replayed_row.current_step
        return _compare(mission_id, marks, replay_events, recorded=recorded, replayed=replayed, stopped=stopped,
                        current=current)

    def _fork_start(self, source: Any, mission: Mission, events: list[Event]) -> dict[str, Any] | None:
        """Where a fork started: its first checkpoint, the steps and delegations it took from its parent."""
        forked = next((e.payload for e in events if e.kind == EventKind.MISSION_FORKED), None)
        if self._source_saver is None:
            self._source_saver = open_checkpointer(self.source_url)
        points = list(self._source_saver.saver.list({"configurable": {"thread_id": mission.id}}))
        if forked is None or not points:
            return None
        point = points[-1]  # newest first: the fork's own first checkpoint
        handed = {e.delegation_id for e in events if e.kind == EventKind.HANDOFF_STARTED}
        taken = [i for i in delegation_ids(source, mission_id=mission.id) if i not in handed]
        return {"point": point, "from_step": forked["from_step"],
                "round": int((point.checkpoint["channel_values"].get("opened") or {}).get("round") or 1),
                "inherited": {i["step"]: {"status": i["status"], "rounds": i["rounds"]} for i in forked["inherited"]},
                "forked": {k: v for k, v in forked.items() if k != "inherited"},
                "delegations": read_delegations(source, ids=taken)}

    def _drive(self, mission_id: str, facts: dict[str, Any], *, fresh_start: bool) -> str | None:
        """Run the copy to its end, answering each gate with the recorded decision; why it stopped early, if so."""
        graph_input: Any = None  # a fork goes on from its first checkpoint
        with transaction(self.url) as tx:
            mark_running(tx, mission_id=mission_id, was="queued", actor="replay")
            if fresh_start:
                graph_input = first_input(tx, mission_id=mission_id)
        run = RunContext(settings=self.scratch_settings, agents=self.agents, mission_id=mission_id,
                         mission=MissionSpec.model_validate(facts["spec"]), workspace=facts["workspace"],
                         model_factory=_record_only, auto_approve_by=facts["auto_approve_by"], fresh=False,
                         replay=True)
        config = {"configurable": {"thread_id": mission_id}, "recursion_limit": self.settings.recursion_limit}
        status, reason, stopped = "failed", "the procedure stopped without an outcome (see the log)", None
        try:
            for _ in range(_MAX_RESUMES):
                interrupted, outcome = False, None
                for chunk in self.graph.stream(graph_input, config, context=run, stream_mode="updates",
                                               durability="sync"):
                    interrupted = interrupted or "__interrupt__" in chunk
                    for update in chunk.values():
                        if isinstance(update, dict) and update.get("outcome"):
                            outcome = update["outcome"]
                if not interrupted:
                    if outcome:
                        status, reason = outcome["status"], outcome.get("reason") or None
                    break
                with session_scope(self.url, readonly=True) as session:
                    waiting = pending_approvals(session, mission_id=mission_id)
                    if waiting:  # a gate the record never asked
                        stopped = f"it asked a gate the record does not have ({waiting[0].kind} in {waiting[0].step})"
                        status, reason = "waiting_approval", None
                        break
                graph_input = Command(resume={"decided": True})
        except ReplayDiverged as exc:
            stopped, status, reason = str(exc), "failed", f"replay stopped: {exc}"
        except (LimitExceeded, GraphRecursionError) as exc:  # as the runner words them
            why = str(exc) if isinstance(exc, LimitExceeded) else (
                f"recursion limit of {self.settings.recursion_limit} graph steps reached (ORCH_RECURSION_LIMIT)")
            reason = f"stopped by a guard: {why}"
        except OrchestratorError as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - the runner records these as internal errors too
            log.debug("replay of %s failed", mission_id, exc_info=True)
            reason = f"internal error: {type(exc).__name__}: {exc} (the service log has the details)"
        if status in TERMINAL:
            with transaction(self.url) as tx:
                end_mission(tx, mission_id=mission_id, status=status, actor="replay", error=reason)  # type: ignore[arg-type]
        return stopped


def _compare(mission_id: str, marks: list[_Mark], events: list[Event], *, recorded: str, replayed: str,
             stopped: str | None, current: str | None) -> ReplayReport:
    """Walk the replay's trail along the record's path; the first entry that differs is the divergence."""
    outcome, position = recorded, 0
    for event in events:
        if event.kind == EventKind.TOOL_CALLED:  # a recorded call is answered by the journal and makes no event
            return ReplayReport(mission_id, False, event.step, f"{event.actor} made a call of "
                                f"{event.payload.get('tool')} ({event.payload.get('call_id')}) that the record does "
                                f"not have", outcome, replayed, position)
        mark = _mark(event)
        if mark is None:
            continue
        if position >= len(marks):
            return ReplayReport(mission_id, False, mark.step, f"the replay went on past the record's end: {mark}",
                                outcome, replayed, position)
        expected = marks[position]
        if mark != expected:
            step = expected.step or mark.step
            return ReplayReport(mission_id, False, step, f"the record has {expected}, the replay {mark}", outcome,
                                replayed, position)
        position += 1
    if stopped or position < len(marks):
        step = marks[position].step if position < len(marks) else current
        nxt = f"; the record goes on with {marks[position]}" if position < len(marks) else ""
        return ReplayReport(mission_id, False, step or current, f"the replay stopped: {stopped or 'early'}{nxt}",
                            outcome, replayed, position)
    if replayed != outcome:
        return ReplayReport(mission_id, False, None, f"the record ends {outcome}, the replay {replayed}", outcome,
                            replayed, position)
    return ReplayReport(mission_id, True, None, "", outcome, replayed, position)


def replay_mission(settings: Settings, mission_id: str) -> ReplayReport:
    """Replay one finished mission of ``settings``' database."""
    with Replayer(settings) as replayer:
        return replayer.replay(mission_id)


def replay_all(settings: Settings) -> list[ReplayReport]:
    """Replay every finished mission of ``settings``' database, oldest first."""
    with session_scope(settings.resolved_database_url, readonly=True) as session:
        ids = list(session.scalars(select(Mission.id).where(Mission.status.in_(sorted(TERMINAL)))
                                   .order_by(Mission.created_at, Mission.id)))
    reports = []
    with Replayer(settings) as replayer:
        for mission_id in ids:
            reports.append(replayer.replay(mission_id))
    return reports
