"""Lease heartbeats: one thread per runner renews the leases of every mission the runner is driving.

A lease says which process runs a mission; it expires unless renewed, so a mission whose process died
can be taken over. Starting a thread per run would cost every mission its start and join; one thread,
started with the first mission and woken every third of a lease, serves them all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.db import session_scope
from orchestrator.db.missions import renew_lease

__all__ = ["LeaseKeeper"]

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews this worker's leases on the missions it holds, until :meth:`close`."""

    def __init__(self, url: str, *, worker: str, lease_s: float) -> None:
        self.url, self.worker, self.lease_s = url, worker, lease_s
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, mission_id: str) -> Iterator[None]:
        """Keep the mission's lease alive for the duration of the block."""
        with self._lock:
            self._held.add(mission_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(mission_id)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self._lock:
                held = sorted(self._held)
            for mission_id in held:
                try:
                    with session_scope(self.url) as session:
                        renew_lease(session, mission_id=mission_id, worker=self.worker, lease_s=self.lease_s)
                except Exception:  # a missed heartbeat only shortens the lease
                    log.warning("lease heartbeat for mission %s failed", mission_id, exc_info=True)
