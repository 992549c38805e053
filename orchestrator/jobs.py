"""Missions as jobs of procrastinate, a PostgreSQL task queue: driving a mission to its next stop is one job.

On PostgreSQL the missions run on procrastinate's workers (``orchestrator worker``, or inside ``serve``)
rather than on a queue of our own; SQLite keeps the in-process pool (:mod:`orchestrator.api.workers`).

- A mission's job is deferred in the transaction that queues the mission (created, a gate decided, resumed, a
  user message while it runs): the mission and its job commit together, or neither does.
- Its ``lock`` and ``queueing_lock`` are ``mission:<id>``: procrastinate never starts a job while another of
  the same mission runs, and keeps at most one waiting.
- Each job attempt claims the mission's lease under its own owner (``<worker id>-j<job id>``), which gives the
  lease a new epoch; every write of the run checks it (:class:`orchestrator.db.direct.Fence`), so an attempt
  that lost its mission writes nothing more.
- Workers heartbeat in procrastinate's table; a job whose worker has been silent for ``worker_stalled_s`` is
  marked failed and replaced by a new job, and its lease dropped, in one transaction. It is replaced rather than
  retried in place because procrastinate's ``finish_job`` does not check which worker finishes a job: a paused
  worker waking up would finish the retried job while another worker runs it, and release its lock.
- A worker paused in the middle of a write transaction (SIGSTOP, a frozen VM) holds its mission's row lock:
  PostgreSQL ends any session of a worker left idle in a transaction for ``worker_stalled_s``, which frees
  the lock for the worker taking the mission over; that takeover waits for a row lock at most a few seconds
  and tries again in the next round, so one held mission does not hold up the others.
- Cancelling a mission cancels its waiting job and asks its running one to abort; the runner stops at its next
  graph step. A worker asked to stop finishes the step in progress and leaves the mission to a new job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from orchestrator.config import Settings
from orchestrator.db.direct import LeaseLost
from orchestrator.db.engine import engine_for
from orchestrator.errors import ConfigError, InvalidTransition

if TYPE_CHECKING:
    import procrastinate

    from orchestrator.context import ModelFactory
    from orchestrator.runner import Runner

__all__ = ["QUEUE", "TASK", "JobWorker", "MissionQueue", "ensure_schema", "lock_of", "run_worker", "uses_jobs"]

log = logging.getLogger(__name__)

TASK = "orchestrator.drive_mission"
QUEUE = "missions"
_SCHEMA_LOCK = 0x6F726368  # advisory lock key: one process installs procrastinate's schema at a time


def lock_of(mission_id: str) -> str:
    return f"mission:{mission_id}"


def uses_jobs(settings: Settings) -> bool:
    """Whether missions run as procrastinate jobs: ``ORCH_QUEUE=auto`` (the default) on PostgreSQL, or
    ``procrastinate``; never on SQLite."""
    postgres = make_url(settings.resolved_database_url).get_backend_name() == "postgresql"
    if settings.queue == "threads":
        return False
    if settings.queue == "procrastinate" and not postgres:
        raise ConfigError("ORCH_QUEUE=procrastinate needs PostgreSQL: set ORCH_DATABASE_URL=postgresql+psycopg://... "
                          "(or ORCH_QUEUE=threads)")
    if postgres:
        try:
            import procrastinate  # noqa: F401
        except ImportError:
            raise ConfigError("missions on PostgreSQL run on procrastinate: pip install 'ml-orchestrator[scale]' "
                              "(or ORCH_QUEUE=threads for the in-process pool)") from None
    return postgres


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _app(url: str | None = None) -> procrastinate.App:
    """A procrastinate app; with ``url`` its connector can be opened (workers), without it only calls that are
    given a connection work (deferring in the caller's transaction)."""
    import procrastinate

    connector = procrastinate.PsycopgConnector(conninfo=_dsn(url), min_size=1, max_size=4) if url else \
        procrastinate.PsycopgConnector()
    return procrastinate.App(connector=connector)


def ensure_schema(url: str) -> bool:
    """Install procrastinate's tables and functions in the database if they are missing; True when it did."""
    engine = engine_for(url)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        if raw.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is not None:
            return False
        raw.execute(resources.files("procrastinate.sql").joinpath("schema.sql").read_text())
    log.info("procrastinate's schema installed")
    return True


def _driver(session: Session) -> Any:
    """The psycopg connection under the session's transaction."""
    return session.connection().connection.driver_connection


@contextmanager
def _savepoint(conn: Any, name: str) -> Iterator[None]:
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
        raise
    conn.execute(f"RELEASE SAVEPOINT {name}")


class MissionQueue:
    """Defers and cancels missions' jobs in the caller's transaction (the API's side: it runs no job)."""

    def __init__(self) -> None:
        self.app = _app()

    @classmethod
    def for_settings(cls, settings: Settings) -> MissionQueue | None:
        """A queue when missions run as jobs (:func:`uses_jobs`), else None (the in-process pool claims them)."""
        if not uses_jobs(settings):
            return None
        ensure_schema(settings.resolved_database_url)
        return cls()

    def defer(self, session: Session, mission_id: str) -> int | None:
        """Defer the job that drives ``mission_id`` to its next stop, in ``session``'s transaction; its id, or
        None when one is already waiting (it will do)."""
        from procrastinate.exceptions import AlreadyEnqueued

        conn = _driver(session)
        try:
            with _savepoint(conn, "orch_defer"):
                return self.app.configure_task(TASK, queue=QUEUE, lock=lock_of(mission_id),
                                               queueing_lock=lock_of(mission_id),
                                               connection=conn).defer(mission_id=mission_id)
        except AlreadyEnqueued:
            return None

    def cancel(self, session: Session, mission_id: str) -> int:
        """Cancel the mission's waiting job and ask its running one to abort; how many jobs were concerned."""
        conn = _driver(session)
        rows = conn.execute("SELECT id FROM procrastinate_jobs WHERE lock = %s AND status IN ('todo', 'doing')",
                            (lock_of(mission_id),)).fetchall()
        return sum(self.app.job_manager.cancel_job_by_id(row[0], abort=True, connection=conn) for row in rows)


# -- the worker side ---------------------------------------------------------------------------------

class _Busy(Exception):
    """The mission's lease is held by a live runner outside the queue (a CLI ``resume``): try again later."""


def _drive(context: Any, mission_id: str) -> str:
    """The task: drive ``mission_id`` to its next stop under a lease of this job attempt."""
    from procrastinate.exceptions import JobAborted
    from procrastinate.job_context import AbortReason

    runner: Runner = context.additional_context["runner"]
    queue: MissionQueue = context.additional_context["queue"]
    owner = f"{runner.worker_id}-j{context.job.id}"

    def shutting_down() -> bool:
        return context.abort_reason() == AbortReason.SHUTDOWN

    try:
        status = runner.run(mission_id, worker=owner, should_stop=shutting_down)
    except InvalidTransition as exc:
        current = _status(runner.url, mission_id)
        if current in ("queued", "running"):  # held by a live runner that is not a job: wait for its lease
            raise _Busy(str(exc)) from None
        return f"nothing to run ({exc})"
    except LeaseLost:  # another attempt took the mission over; this one stopped without writing
        log.warning("mission %s: job %s lost its lease to a newer attempt", mission_id, context.job.id)
        raise
    if status == "cancelled" and context.should_abort():
        raise JobAborted(f"mission {mission_id} was cancelled")
    if status == "running" and shutting_down():  # stopped between two steps: a new job goes on from there
        with _session(runner.url) as session:
            queue.defer(session, mission_id)
        return "stopped for the worker's shutdown; the mission goes on in a new job"
    return status


@contextmanager
def _session(url: str) -> Iterator[Session]:
    from orchestrator.db import session_scope

    with session_scope(url) as session:
        yield session


def _status(url: str, mission_id: str) -> str | None:
    from sqlalchemy import select

    from orchestrator.db import session_scope
    from orchestrator.db.models import Mission

    with session_scope(url, readonly=True) as session:
        return session.scalar(select(Mission.status).where(Mission.id == mission_id))


def _worker_app(url: str, *, lease_s: float) -> procrastinate.App:
    import procrastinate

    app = _app(url)
    app.task(name=TASK, queue=QUEUE, pass_context=True,
             retry=procrastinate.RetryStrategy(retry_exceptions={_Busy}, wait=max(1, int(lease_s / 4)),
                                               max_attempts=1000))(_drive)
    return app


_TAKEOVER_LOCK_WAIT = "3s"
"""How long a takeover waits for a row a paused worker may hold locked, before it tries again next round."""


def _end_frozen_transactions(seconds: float) -> None:
    """Have PostgreSQL end every session this process opens from now on (the records' engine, the checkpointer's
    pool, procrastinate's) once it sits idle inside a transaction for ``seconds``: no transaction of a run waits
    on anything but the database, so one that does is a paused process, holding its mission's row lock. Set
    through libpq's ``PGOPTIONS``, which every connection of the process reads when it opens."""
    current = os.environ.get("PGOPTIONS", "")
    if "idle_in_transaction_session_timeout" not in current:
        option = f"-c idle_in_transaction_session_timeout={max(1000, int(seconds * 1000))}"
        os.environ["PGOPTIONS"] = f"{current} {option}".strip()


def _replace_stalled(url: str, queue: MissionQueue, job_id: int, mission_id: str) -> bool:
    """Fail a stalled job, drop the lease its attempt held and defer a new job, in one transaction; False when
    the job was no longer running (finished, or replaced by another worker)."""
    from sqlalchemy import text

    from orchestrator.db import session_scope

    with session_scope(url) as session:
        session.execute(text(f"SET LOCAL lock_timeout = '{_TAKEOVER_LOCK_WAIT}'"))
        failed = session.execute(text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :id "
                                      "AND status = 'doing' RETURNING id"), {"id": job_id}).first()
        if failed is None:
            return False
        session.execute(text("UPDATE missions SET lease_owner = NULL, lease_expires_at = NULL "
                             "WHERE id = :id AND lease_owner LIKE :owner"),
                        {"id": mission_id, "owner": f"%-j{job_id}"})
        queue.defer(session, mission_id)
    return True


class JobWorker:
    """procrastinate's worker in a thread of its own, running missions on a pool of ``concurrency`` threads
    (each mostly waits on a model or a tool) with one shared :class:`~orchestrator.runner.Runner`."""

    def __init__(self, settings: Settings, *, concurrency: int | None = None,
                 model_factory: ModelFactory | None = None, runner: Runner | None = None,
                 install_signal_handlers: bool = False) -> None:
        self.settings = settings
        self.url = settings.resolved_database_url
        _end_frozen_transactions(settings.worker_stalled_s)
        engine_for(self.url).dispose()  # idle connections opened before (the migrations') reopen with it
        self.concurrency = max(1, concurrency if concurrency is not None else settings.runner_workers)
        self._model_factory = model_factory
        self._runner = runner
        self._signals = install_signal_handlers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None

    # The API's pool interface (orchestrator.api.workers.WorkerPool): jobs are woken by PostgreSQL's NOTIFY.
    def wake(self) -> None:
        """Nothing to do: a deferred job notifies the workers itself."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="procrastinate-worker", daemon=True)
        self._thread.start()
        self._started.wait(60)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop fetching jobs; running missions stop at their next graph step and go on in new jobs."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Run until stopped (a signal with ``install_signal_handlers``, or :meth:`stop`)."""
        try:
            asyncio.run(self._main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._started.set()

    def _make_runner(self) -> Runner:
        from orchestrator.runner import Runner

        kwargs = {"model_factory": self._model_factory} if self._model_factory is not None else {}
        return Runner(self.settings, migrate=False, **kwargs)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        # procrastinate runs a sync task on the loop's default executor: one thread per concurrent mission.
        self._loop.set_default_executor(ThreadPoolExecutor(self.concurrency + 2, thread_name_prefix="mission"))
        ensure_schema(self.url)
        runner = self._runner or await asyncio.to_thread(self._make_runner)
        queue = MissionQueue()
        app = _worker_app(self.url, lease_s=self.settings.lease_seconds)
        self._task = asyncio.current_task()
        try:
            async with app.open_async():
                maintenance = asyncio.create_task(self._maintain(app, queue))
                self._started.set()
                try:
                    await app.run_worker_async(
                        queues=[QUEUE], concurrency=self.concurrency, name=f"orchestrator@{socket.gethostname()}",
                        additional_context={"runner": runner, "queue": queue}, shutdown_graceful_timeout=0,
                        install_signal_handlers=self._signals, listen_notify=True, fetch_job_polling_interval=2.0,
                        abort_job_polling_interval=1.0,
                        update_heartbeat_interval=self.settings.worker_heartbeat_s,
                        stalled_worker_timeout=self.settings.worker_stalled_s)
                finally:
                    maintenance.cancel()
        finally:
            if self._runner is None:
                runner.close()

    async def _maintain(self, app: procrastinate.App, queue: MissionQueue) -> None:
        """Replace the jobs of stalled workers (every worker does it; one transaction decides each job)."""
        stalled_s = self.settings.worker_stalled_s
        while True:
            await asyncio.sleep(max(0.5, stalled_s / 3))
            try:
                jobs = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_s, queue=QUEUE,
                                                              task_name=TASK)
            except Exception:
                log.warning("stalled-job recovery failed; trying again", exc_info=True)
                continue
            for job in jobs:  # each on its own: one whose rows are still locked does not hold up the others
                mission_id = str(job.task_kwargs.get("mission_id"))
                try:
                    replaced = await asyncio.to_thread(_replace_stalled, self.url, queue, job.id, mission_id)
                except Exception as exc:
                    log.warning("mission %s: stalled job %s not replaced yet (%s); trying again", mission_id,
                                job.id, str(exc).splitlines()[0])
                    continue
                if replaced:
                    log.warning("mission %s: job %s stalled (its worker sent no heartbeat for %.0f s); a new job "
                                "takes it over from its last checkpoint", mission_id, job.id, stalled_s)


def run_worker(settings: Settings, *, concurrency: int | None = None,
               model_factory: Callable[..., Any] | None = None) -> None:
    """``orchestrator worker`` on PostgreSQL: procrastinate's worker in the foreground until SIGINT/SIGTERM."""
    worker = JobWorker(settings, concurrency=concurrency, model_factory=model_factory, install_signal_handlers=True)
    log.info("procrastinate worker: %d missions at once", worker.concurrency)
    worker.run()
