"""Lease heartbeats: one thread per runner renews the leases of every mission the runner is driving.

A lease says which process runs a mission; it expires unless renewed, so a mission whose process died
can be taken over. Starting a thread per run would cost every mission its start and join; one thread,
started with the first mission and woken every third of a lease, serves them all.

Each claim gives the lease a new epoch, and the run's writes are fenced by it
(:class:`~orchestrator.db.direct.Fence`). A renewal that finds the lease gone (another worker claimed the
mission after this process was paused or cut off), or no successful renewal for a whole lease (the database
was unreachable: someone else may hold it by now), marks the fence lost: the runner stops before its next write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from orchestrator.db import session_scope
from orchestrator.db.direct import Fence
from orchestrator.db.missions import renew_lease
from orchestrator.db.models import Mission

__all__ = ["LeaseKeeper"]

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the missions this runner drives (each held by ``worker`` or a run's own owner),
    until :meth:`close`."""

    def __init__(self, url: str, *, worker: str, lease_s: float) -> None:
        self.url, self.worker, self.lease_s = url, worker, lease_s
        self._held: dict[str, Fence] = {}
        self._renewed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cancel_check_s = 0.5
        self._statuses_at = float("-inf")
        self._cancelled: set[str] = set()

    @contextmanager
    def hold(self, mission_id: str, *, epoch: int | None = None, worker: str | None = None) -> Iterator[Fence]:
        """Keep the mission's lease (claimed at ``epoch`` by ``worker``, default the keeper's) alive for the
        block; the fence it yields is marked lost when a renewal finds the lease gone."""
        fence = Fence(mission_id=mission_id, worker=worker or self.worker, epoch=epoch)
        with self._lock:
            self._held[mission_id] = fence
            self._renewed[mission_id] = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
                self._thread.start()
        try:
            yield fence
        finally:
            with self._lock:
                if self._held.get(mission_id) is fence:
                    del self._held[mission_id]
                    self._renewed.pop(mission_id, None)

    def cancelled(self, mission_id: str) -> bool:
        """Whether the mission was cancelled, as of at most ``cancel_check_s`` ago.

        One query answers for every mission this keeper holds (a thread that finds the answer stale asks for
        all of them): thirty missions asking for their own status between every two graph steps cost a worker
        more CPU than their leases did."""
        now = time.monotonic()
        with self._lock:
            stale = now - self._statuses_at >= self.cancel_check_s
            if stale:
                self._statuses_at = now
                held = list(self._held)
        if stale:
            if mission_id not in held:
                held.append(mission_id)
            with session_scope(self.url, readonly=True) as session:
                gone = set(session.scalars(select(Mission.id).where(Mission.id.in_(held),
                                                                    Mission.status == "cancelled")))
            with self._lock:
                self._cancelled = gone
            return mission_id in gone
        with self._lock:
            known = mission_id in self._held or mission_id in self._cancelled
            answer = mission_id in self._cancelled
        if known:
            return answer
        with session_scope(self.url, readonly=True) as session:  # a mission this keeper does not hold
            return session.scalar(select(Mission.status).where(Mission.id == mission_id)) == "cancelled"

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self._lock:
                held = list(self._held.values())
            for fence in held:
                self._renew(fence)

    def _renew(self, fence: Fence) -> None:
        try:
            with session_scope(self.url) as session:
                renewed = renew_lease(session, mission_id=fence.mission_id, worker=fence.worker,
                                      lease_s=self.lease_s, epoch=fence.epoch)
        except Exception:  # a missed heartbeat only shortens the lease, until a whole lease has gone by
            log.warning("lease heartbeat for mission %s failed", fence.mission_id, exc_info=True)
            with self._lock:
                last = self._renewed.get(fence.mission_id, time.monotonic())
            if time.monotonic() - last > self.lease_s and not fence.lost.is_set():
                fence.lost.set()
                log.warning("mission %s: no lease renewal for %.0f s (more than the lease); this runner (%s) "
                            "stops before its next write", fence.mission_id, time.monotonic() - last, fence.worker)
            return
        if renewed:
            with self._lock:
                self._renewed[fence.mission_id] = time.monotonic()
        elif not fence.lost.is_set():
            fence.lost.set()
            log.warning("mission %s: the lease of this runner (%s, epoch %s) was taken over or released; it stops "
                        "before its next write", fence.mission_id, fence.worker, fence.epoch)
