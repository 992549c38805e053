"""The background runner on SQLite: a bounded pool of threads that claim queued missions with a lease and drive
them (on PostgreSQL, procrastinate's workers run them instead: :mod:`orchestrator.jobs`).

The threads share one :class:`~orchestrator.runner.Runner` (one compiled graph and checkpointer: a thread
waiting on a model costs its stack and its mission's state, not a graph), each with its own worker id, so
``runner_workers`` can be sized for missions that mostly wait. A mission is claimed with ``claim_next`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
write lock on SQLite), so several ``orchestrator serve`` / ``worker`` processes can share one database;
the runner heartbeats the lease while it drives. A mission whose lease expired (its process died) is
claimed again and continues from its last checkpoint; a dead process on this host is noticed at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from sqlalchemy import select, update

from orchestrator.api.logs import mission_context
from orchestrator.config import Settings
from orchestrator.context import ModelFactory
from orchestrator.db import session_scope
from orchestrator.db.missions import claim_next
from orchestrator.db.models import Mission, utcnow

__all__ = ["WorkerPool", "claim_one", "reap_dead_leases", "process_worker_id"]

log = logging.getLogger(__name__)


def process_worker_id(index: int) -> str:
    """``host:pid:random-wN``: the runner's owner format, so a dead local owner can be recognised."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}-w{index}"


def claim_one(url: str, *, worker: str, lease_s: float) -> str | None:
    """Claim the oldest runnable mission for ``worker``; its id, or None when there is nothing to run."""
    with session_scope(url) as session:
        mission = claim_next(session, worker=worker, lease_s=lease_s)
        return mission.id if mission is not None else None


def reap_dead_leases(url: str) -> list[str]:
    """Free the leases of running missions whose holder was a process on this host that is gone."""
    from orchestrator.runner import _dead_local_owner  # the runner's own test of a lease holder

    freed: list[str] = []
    with session_scope(url) as session:
        rows = session.execute(select(Mission.id, Mission.lease_owner).where(
            Mission.status.in_(("running", "queued")), Mission.lease_owner.is_not(None))).all()
        for row in rows:
            if _dead_local_owner(row.lease_owner):
                session.execute(update(Mission).where(Mission.id == row.id, Mission.lease_owner == row.lease_owner)
                                .values(lease_owner=None, lease_expires_at=utcnow()))
                freed.append(row.id)
    for mission_id in freed:
        log.warning("mission %s was left by a dead process; it will resume from its checkpoint", mission_id)
    return freed


class WorkerPool:
    """``size`` threads, each claiming and running one mission at a time until stopped."""

    def __init__(self, settings: Settings, *, model_factory: ModelFactory | None = None, size: int | None = None,
                 poll_s: float = 0.25, reap_every_s: float = 5.0) -> None:
        self.settings, self.model_factory = settings, model_factory
        self.size = max(1, size if size is not None else settings.runner_workers)
        self.poll_s, self.reap_every_s = poll_s, reap_every_s
        self.url = settings.resolved_database_url
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_reap = 0.0
        self._lock = threading.Lock()
        self._claiming = threading.Lock()
        """Held by the one idle thread that asks the database for work; the other idle threads wait on it."""
        self._alive = 0
        self.busy = 0

    def start(self) -> None:
        reap_dead_leases(self.url)
        self._last_reap = time.monotonic()
        self._shared = self._runner()
        self._alive = self.size
        for index in range(self.size):
            thread = threading.Thread(target=self._loop, args=(index,), name=f"orchestrator-worker-{index}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("runner pool started: %d workers", self.size)

    def wake(self) -> None:
        """Tell idle workers there may be work now (a mission was queued or a gate decided)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; a mission in progress keeps its lease until it expires or its run ends."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _runner(self):  # noqa: ANN202
        from orchestrator.runner import Runner

        kwargs = {"model_factory": self.model_factory} if self.model_factory is not None else {}
        return Runner(self.settings, worker_id=process_worker_id(0), migrate=False, **kwargs)

    def _loop(self, index: int) -> None:
        runner, worker = self._shared, process_worker_id(index)
        try:
            while (mission_id := self._next(worker)) is not None:
                self.busy += 1
                try:
                    with mission_context(mission_id):
                        log.info("worker %s runs mission %s", worker, mission_id)
                        status = self._safely(runner.run, mission_id, claimed=True, worker=worker)
                        log.info("mission %s stopped: %s", mission_id, status)
                finally:
                    self.busy -= 1
        finally:
            with self._lock:
                self._alive -= 1
                last = self._alive == 0
            if last:  # the last thread out closes the shared runner
                runner.close()

    def _next(self, worker: str) -> str | None:
        """The next mission for ``worker`` to run, None once the pool stops.

        One idle thread at a time polls the database (a write transaction each time); the others wait on
        ``_claiming`` without touching it. A thread that claims a mission hands the turn to the next idle one at
        once, so a burst of queued missions is claimed back to back, while thirty idle threads polling four
        times a second each cost a worker most of a core and kept its write lock busy.
        """
        with self._claiming:
            while not self._stop.is_set():
                if time.monotonic() - self._last_reap > self.reap_every_s:
                    self._last_reap = time.monotonic()
                    self._safely(reap_dead_leases, self.url)
                mission_id = self._safely(claim_one, self.url, worker=worker, lease_s=self.settings.lease_seconds)
                if mission_id is not None:
                    return mission_id
                self._wake.wait(self.poll_s)
                self._wake.clear()
        return None

    @staticmethod
    def _safely(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN205
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("worker step %s failed", getattr(fn, "__name__", fn))
            time.sleep(0.2)
            return None
