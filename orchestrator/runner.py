"""The runner: takes a mission's lease, drives the compiled graph to its next stop, and records the outcome.

A stop is the end of the mission, or a human gate (``waiting_approval``). The graph's checkpoints live in
the same database, keyed by the mission id, so another process can pick a mission up where it stopped.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.errors import GraphRecursionError
from langgraph.types import Command
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.loader import load_agents
from orchestrator.chat_models import model_name_for, settings_model_factory
from orchestrator.checkpoint import open_checkpointer
from orchestrator.config import Settings
from orchestrator.context import ModelFactory, RunContext
from orchestrator.db import session_scope
from orchestrator.db.approvals import Decision, decide_approval, pending_approvals
from orchestrator.db.direct import LeaseLost, Transaction, current_fence, fenced, transaction
from orchestrator.db.missions import (
    claim_mission,
    create_mission,
    end_mission,
    get_mission,
    mark_running,
    release_lease,
    run_row,
    set_status,
)
from orchestrator.db.models import Mission
from orchestrator.db.schema import upgrade
from orchestrator.errors import InputError, InvalidTransition, LimitExceeded, OrchestratorError
from orchestrator.graph import build_graph, first_input
from orchestrator.leases import LeaseKeeper
from orchestrator.mission import MissionSpec, parse_mission
from orchestrator.procedure import TERMINAL
from orchestrator.state import INITIAL_STATE
from orchestrator.telemetry import configure as configure_tracing
from orchestrator.telemetry import mission_span
from orchestrator.views import approval_view

if TYPE_CHECKING:
    from orchestrator.jobs import MissionQueue

__all__ = ["Runner"]

log = logging.getLogger(__name__)


@cache
def _freeze_startup_heap() -> None:
    """Once per process, when the first runner is built: what is loaded by then (the ML toolkit's libraries,
    the definitions, the compiled graph) lives as long as the process, so it is kept out of the cyclic
    collector's full scans, which otherwise cost every mission several milliseconds (the gc.freeze() idiom
    of pre-fork servers; collected first, so no garbage is frozen with it)."""
    gc.collect()
    gc.freeze()


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _dead_local_owner(owner: str | None) -> bool:
    """True when the lease holder was a process on this host that no longer exists (killed, crashed)."""
    if not owner or owner.count(":") < 2:
        return False
    host, pid, _ = owner.split(":", 2)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # kill(pid, 0) succeeds on a zombie (dead, not yet reaped by its parent): its state in /proc says so.
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in (b"Z", b"X")


class Runner:
    """Owns the compiled graph and its checkpointer for one process; several threads may each run a mission
    through it at once (each run its own lease, under ``worker`` or the runner's ``worker_id``)."""

    dispatch: MissionQueue | None = None
    """Set when missions run as procrastinate jobs (``orchestrator.jobs``): whatever queues a mission here
    (created, a gate decided) defers its job in the same transaction, and cancelling cancels it."""

    def __init__(self, settings: Settings, *, model_factory: ModelFactory = settings_model_factory,
                 worker_id: str | None = None, migrate: bool = True) -> None:
        self.settings = settings
        self.url = settings.resolved_database_url
        if migrate:
            upgrade(self.url)
        self.agents = load_agents(settings.agents_dirs)
        self.model_factory = model_factory
        self.worker_id = worker_id or _worker_id()
        self._saver = open_checkpointer(self.url)
        self._leases = LeaseKeeper(self.url, worker=self.worker_id, lease_s=settings.lease_seconds)
        configure_tracing(settings)  # spans over OTLP when ORCH_OTEL_ENDPOINT is set; nothing otherwise
        self.graph = build_graph(self.agents).compile(checkpointer=self._saver.saver)
        _freeze_startup_heap()

    def close(self) -> None:
        self._leases.close()
        self._saver.__exit__(None, None, None)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submission -------------------------------------------------------------------------------
    def submit(self, text: str, *, workspace: Path, owner: str = "cli", auto_approve_by: str | None = None,
               idempotency_key: str | None = None, request_sha256: str | None = None) -> str:
        """Validate and queue a mission; returns its id. Nothing is written when the input is bad."""
        return self.create(text, workspace=workspace, owner=owner, auto_approve_by=auto_approve_by,
                           idempotency_key=idempotency_key, request_sha256=request_sha256).id

    def create(self, text: str, *, workspace: Path, owner: str = "cli", auto_approve_by: str | None = None,
               idempotency_key: str | None = None, request_sha256: str | None = None) -> Mission:
        """Like :meth:`submit`, returning the mission row as it was created (status ``queued``)."""
        spec = parse_mission(text)
        if spec.agent not in self.agents:
            raise InputError(f"/agent {spec.agent!r} is not a known agent; known: {', '.join(sorted(self.agents))}")
        workspace = Path(workspace).expanduser()
        if not workspace.is_dir():
            raise InputError(f"workspace {str(workspace)!r} does not exist or is not a directory")
        lead = self.agents[spec.agent]
        # A job is deferred in the session's transaction; with no job queue a direct one is enough (and cheaper).
        with session_scope(self.url) if self.dispatch is not None else transaction(self.url) as session:
            mission = create_mission(session, text=text, spec=spec.model_dump(mode="json"),
                                     workspace=str(workspace.resolve()), owner=owner,
                                     model=model_name_for(lead, self.settings.model),
                                     auto_approve_by=auto_approve_by, idempotency_key=idempotency_key,
                                     request_sha256=request_sha256)
            self.queued(session, mission.id)
            return mission

    def queued(self, session: Session | Transaction, mission_id: str) -> None:
        """The mission was queued in ``session``'s transaction: defer its job there (when missions run as jobs,
        always in a session)."""
        if self.dispatch is not None:
            self.dispatch.defer(session, mission_id)

    # -- driving ----------------------------------------------------------------------------------
    def _config(self, mission_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": mission_id}, "recursion_limit": self.settings.recursion_limit}

    def _start(self, mission_id: str, *, claimed: bool, graph_input: Any,
               worker: str) -> tuple[RunContext, Any, int]:
        """One transaction: check the mission can run, take its lease, mark it running (starting its first
        step if it never ran); returns the run context, the graph input and the lease's epoch."""
        runnable = graph_input is None or isinstance(graph_input, (dict, Command))
        # Direct statements (orchestrator.db.direct): every run of every mission starts here.
        with transaction(self.url) as tx:
            mission = run_row(tx, mission_id)
            if mission.status in TERMINAL:
                raise InvalidTransition(f"mission {mission_id} is already {mission.status}; nothing to run")
            if mission.status == "waiting_approval":
                raise InvalidTransition(f"mission {mission_id} is waiting for an approval: "
                                        f"`orchestrator approve {mission_id}` (or --reject) first")
            if not claimed:
                epoch = self._claim(tx, mission_id, owner=mission.lease_owner, worker=worker)
            elif mission.lease_owner == worker:
                epoch = mission.lease_epoch
            else:
                raise LeaseLost(f"mission {mission_id} was claimed by this worker ({worker}) but is held by "
                                f"{mission.lease_owner or 'nobody'} now; not running it")
            # A mission still queued with no checkpoint was never started: none of its nodes ran before.
            fresh = isinstance(graph_input, dict) and mission.status == "queued"
            if runnable:
                mark_running(tx, mission_id=mission_id, was=mission.status, actor="orchestrator")
            if fresh:
                graph_input = first_input(tx, mission_id=mission_id)
            context = RunContext(settings=self.settings, agents=self.agents, mission_id=mission_id,
                                 mission=MissionSpec.model_validate(mission.spec), workspace=Path(mission.workspace),
                                 model_factory=self.model_factory, auto_approve_by=mission.auto_approve_by,
                                 fresh=fresh)
            return context, graph_input, epoch

    def _claim(self, tx: Transaction, mission_id: str, *, owner: str | None, worker: str) -> int:
        """Take the mission's lease for ``worker``; returns its new epoch."""
        lease_s = self.settings.lease_seconds
        if (epoch := claim_mission(tx, mission_id=mission_id, worker=worker, lease_s=lease_s)) is not None:
            return epoch
        if _dead_local_owner(owner) and (epoch := claim_mission(tx, mission_id=mission_id, worker=worker,
                                                                lease_s=lease_s, dead_owner=owner)) is not None:
            return epoch
        raise InvalidTransition(f"mission {mission_id} is being run by {owner}; try again when its lease expires")

    def run(self, mission_id: str, *, claimed: bool = False, worker: str | None = None,
            should_stop: Callable[[], bool] | None = None) -> str:
        """Drive the mission until it ends or waits for a human; returns its status.

        ``worker``: the lease's owner for this run (default: the runner's ``worker_id``); ``claimed=True`` when
        it already holds the lease (a pool thread that took it with ``claim_next``), so the mission is not
        claimed a second time. ``should_stop``: asked between graph steps; when it says so the run stops there,
        leaving the mission ``running`` for another run to go on from its checkpoint (a worker shutting down).
        """
        worker = worker or self.worker_id
        graph_input = self._graph_input(mission_id)
        context, graph_input, epoch = self._start(mission_id, claimed=claimed, graph_input=graph_input, worker=worker)
        status: str | None = None
        try:
            # Every write of the run checks the lease is still this claim's (orchestrator.db.direct.Fence).
            with (self._leases.hold(mission_id, epoch=epoch, worker=worker) as fence, fenced(fence),
                  mission_span(context) as span):  # a span when tracing is on
                status = span.outcome(self._drive(context, graph_input, should_stop=should_stop))
            return status
        finally:
            if status not in TERMINAL:  # a terminal status change already cleared the lease
                with session_scope(self.url) as session:
                    release_lease(session, mission_id=mission_id, worker=worker)

    def _set(self, mission_id: str, status: str, *, error: str | None = None) -> str:
        if status in TERMINAL:
            with transaction(self.url) as tx:
                if end_mission(tx, mission_id=mission_id, status=status, actor="orchestrator",  # type: ignore[arg-type]
                               error=error):
                    return status
        with session_scope(self.url) as session:  # not running any more: set_status knows what to do
            return set_status(session, mission_id=mission_id, status=status, actor="orchestrator",  # type: ignore[arg-type]
                              error=error).status

    def _graph_input(self, mission_id: str) -> Any:
        """What to feed the graph: the initial state, a resume decision, ``None`` to continue, or False when done."""
        snapshot = self.graph.get_state(self._config(mission_id))
        if not snapshot.values and not snapshot.next:
            return dict(INITIAL_STATE)  # a mission that never ran (or died before its first checkpoint)
        if snapshot.interrupts:
            with session_scope(self.url) as session:
                if pending_approvals(session, mission_id=mission_id):
                    return "waiting"
            return Command(resume={"decided": True})
        if snapshot.next or snapshot.tasks:
            # ``next`` leaves out a task whose writes were saved before its checkpoint was (a process that died
            # in between): it is not done, LangGraph applies those writes when the run continues.
            return None
        return False

    def _drive(self, context: RunContext, graph_input: Any, *, should_stop: Callable[[], bool] | None = None) -> str:
        mission_id = context.mission_id
        if isinstance(graph_input, str):  # "waiting": a gate is still undecided
            return self._set(mission_id, "waiting_approval")
        interrupted, outcome = False, None
        if graph_input is not False:
            try:
                # "sync": the checkpoint is written before the next step starts. The records share the database
                # file, and a checkpoint written in the background would make them wait on SQLite's lock.
                for chunk in self.graph.stream(graph_input, self._config(mission_id), context=context,
                                               stream_mode="updates", durability="sync"):
                    # Where the run stopped is read off the updates: no need to load the whole state again.
                    interrupted = interrupted or "__interrupt__" in chunk
                    for update in chunk.values():
                        if isinstance(update, dict) and update.get("outcome"):
                            outcome = update["outcome"]
                    if self._cancelled(mission_id):
                        return "cancelled"
                    if should_stop is not None and should_stop():
                        log.info("mission %s: run stopped between two steps; it goes on from its checkpoint",
                                 mission_id)
                        return "running"
                    if (fence := current_fence()) is not None:
                        fence.ensure_held()  # a renewal found the lease gone: stop before the next step
            except LeaseLost as exc:
                return self._lost(mission_id, exc)
            except (LimitExceeded, GraphRecursionError) as exc:
                reason = str(exc) if isinstance(exc, LimitExceeded) else (
                    f"recursion limit of {self.settings.recursion_limit} graph steps reached (ORCH_RECURSION_LIMIT)")
                return self._set(mission_id, "failed", error=f"stopped by a guard: {reason}")
            except OrchestratorError as exc:
                return self._set(mission_id, "failed", error=str(exc))
            except Exception as exc:
                log.debug("mission %s failed", mission_id, exc_info=True)
                log.error("mission %s failed: %s: %s", mission_id, type(exc).__name__, exc)
                return self._set(mission_id, "failed", error=f"internal error: {type(exc).__name__}: {exc} "
                                                             "(the service log has the details)")
        else:
            snapshot = self.graph.get_state(self._config(mission_id))
            interrupted, outcome = bool(snapshot.interrupts), snapshot.values.get("outcome")
        if interrupted:
            return self._set(mission_id, "waiting_approval")
        if not outcome:  # the graph always decides an outcome at its end: a run that stopped without one failed
            return self._set(mission_id, "failed", error="the procedure stopped without an outcome (see the log)")
        return self._set(mission_id, outcome["status"], error=outcome.get("reason") or None)

    def _lost(self, mission_id: str, exc: LeaseLost) -> str:
        """The run lost its lease: it stops, writing nothing more. A mission that ended meanwhile (cancelled)
        says so; one another runner took over raises, so that the caller does not take its status for this run's."""
        with session_scope(self.url, readonly=True) as session:
            status = session.scalar(select(Mission.status).where(Mission.id == mission_id))
        worker = getattr(current_fence(), "worker", self.worker_id)
        if status in TERMINAL:
            if status != "cancelled":  # another runner finished it while this one was paused or cut off
                log.warning("mission %s: this runner (%s) lost its lease while another ended the mission (%s); "
                            "it stops before its next write", mission_id, worker, status)
            return str(status)
        log.warning("mission %s: this runner (%s) stopped: %s", mission_id, worker, exc)
        raise exc

    def _cancelled(self, mission_id: str) -> bool:
        """Checked between graph steps; the answer is at most half a second old (cancel is rare; steps are many),
        and one query answers for every mission this runner drives (:meth:`LeaseKeeper.cancelled`)."""
        return self._leases.cancelled(mission_id)

    # -- human actions ----------------------------------------------------------------------------
    def decide(self, mission_id: str, *, decision: Decision, actor: str, comment: str | None = None,
               approval_id: int | None = None, quoted_sha256: str | None = None) -> dict[str, Any]:
        """Record a decision (approved, rejected, changes_requested) on the mission's pending gate and queue
        the mission to go on."""
        if decision == "changes_requested" and not (comment or "").strip():
            raise InputError("requesting changes needs a comment saying what to change")
        with session_scope(self.url) as session:
            get_mission(session, mission_id)
            row = decide_approval(session, mission_id=mission_id, decision=decision,
                                  actor=actor, comment=comment, approval_id=approval_id, quoted_sha256=quoted_sha256)
            mission = get_mission(session, mission_id, lock=True)
            if mission.status == "waiting_approval" and not pending_approvals(session, mission_id=mission_id):
                set_status(session, mission_id=mission_id, status="queued", actor=actor)
                self.queued(session, mission_id)
            return approval_view(row)

    def cancel(self, mission_id: str, *, actor: str) -> str:
        with session_scope(self.url) as session:
            mission = get_mission(session, mission_id)
            if mission.status in TERMINAL:
                raise InvalidTransition(f"mission {mission_id} is already {mission.status}; nothing to cancel")
            status = set_status(session, mission_id=mission_id, status="cancelled", actor=actor).status
            if self.dispatch is not None:  # the waiting job is cancelled, the running one asked to abort
                self.dispatch.cancel(session, mission_id)
            return status
