"""Missions as procrastinate jobs on PostgreSQL: a worker killed (-9) or paused (SIGSTOP) mid-mission leaves every
mission completed exactly once, by a new job on another worker, and the paused one writes nothing after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import Event, Mission, ModelTurn
from orchestrator.jobs import MissionQueue
from orchestrator.runner import Runner
from tests.support.fake_openai import FakeOpenAI, fake_openai

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MISSION = "/agent ml-engineer\nMission: Productionize the churn model {n} with batch scoring.\n"


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    with fake_openai(latency=0.3) as server:
        yield server


def _worker(url: str, home: Path, model: FakeOpenAI, name: str) -> subprocess.Popen[str]:
    env = {**os.environ, **model.env(), "ORCH_DATABASE_URL": url, "ORCH_HOME": str(home), "ORCH_LOG_JSON": "false",
           "ORCH_WORKER_HEARTBEAT_S": "1", "ORCH_WORKER_STALLED_S": "4", "ORCH_LEASE_SECONDS": "30",
           "PYTHONPATH": str(ROOT)}
    log = open(home / f"{name}.log", "w")  # noqa: SIM115 - the process's log, read when a test fails
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "worker", "--workers", "4"], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _queue(url: str, home: Path, model: FakeOpenAI, count: int) -> list[str]:
    settings = Settings(home=home, database_url=url, model="openai:fake-model", model_base_url=model.base_url,
                        model_api_key="fake", _env_file=None)
    with Runner(settings, migrate=False) as runner:
        runner.dispatch = MissionQueue.for_settings(settings)
        assert runner.dispatch is not None  # PostgreSQL: missions are jobs
        ids = []
        for n in range(count):
            workspace = home / f"ws{n}"
            workspace.mkdir()
            ids.append(runner.create(MISSION.format(n=n), workspace=workspace, auto_approve_by="test").id)
        return ids


def _turns(url: str, ids: list[str]) -> int:
    with session_scope(url, readonly=True) as session:
        return session.scalar(select(func.count()).select_from(ModelTurn).where(ModelTurn.mission_id.in_(ids)))


def _wait(url: str, ids: list[str], until, timeout: float, procs: list[subprocess.Popen], home: Path) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        for proc in procs:
            if proc.poll() is not None and proc.returncode not in (-signal.SIGKILL,):
                pytest.fail(f"worker exited with {proc.returncode}: {_logs(home)}")
        if time.monotonic() > deadline:
            with session_scope(url, readonly=True) as session:
                states = session.execute(select(Mission.id, Mission.status, Mission.lease_owner)
                                         .where(Mission.id.in_(ids))).all()
            pytest.fail(f"timed out: {states}\n{_logs(home)}")
        time.sleep(0.1)


def _logs(home: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(home.glob("*.log")))


def _done(url: str, ids: list[str]) -> bool:
    with session_scope(url, readonly=True) as session:
        statuses = session.scalars(select(Mission.status).where(Mission.id.in_(ids))).all()
    return all(s not in ("queued", "running") for s in statuses)


def _check_once(url: str, ids: list[str]) -> None:
    from bench_check import check_missions

    problems = [p for p in check_missions(url, ids) if "claimed" not in p]  # a taken-over mission is claimed twice
    assert problems == []


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def _bench_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """``check_missions`` of bench/concurrent_missions.py, importable as ``bench_check``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_check", ROOT / "bench" / "concurrent_missions.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_check", module)
    spec.loader.exec_module(module)


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_worker_killed_or_paused_mid_mission_leaves_every_mission_completed_once(
        pg_url: str, tmp_path: Path, model: FakeOpenAI, how: str) -> None:
    first = _worker(pg_url, tmp_path, model, "first")
    second = None
    try:
        ids = _queue(pg_url, tmp_path, model, 3)
        # mid-mission: each has answered a few turns, none is done (18 answers each at 0.3 s)
        _wait(pg_url, ids, lambda: _turns(pg_url, ids) >= 3 * 4, 120, [first], tmp_path)
        os.kill(first.pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        with session_scope(pg_url, readonly=True) as session:
            taken = dict(session.execute(select(Mission.id, Mission.lease_epoch).where(Mission.id.in_(ids))).all())
        second = _worker(pg_url, tmp_path, model, "second")
        _wait(pg_url, ids, lambda: _done(pg_url, ids), 180, [second], tmp_path)
        if how == "stop":
            os.kill(first.pid, signal.SIGCONT)  # wakes up with missions it no longer holds
            time.sleep(5)
        with session_scope(pg_url, readonly=True) as session:
            events = session.scalar(select(func.count()).select_from(Event).where(Event.mission_id.in_(ids)))
            epochs = dict(session.execute(select(Mission.id, Mission.lease_epoch).where(Mission.id.in_(ids))).all())
            jobs = session.execute(text("SELECT args->>'mission_id', status FROM procrastinate_jobs "
                                        "WHERE args->>'mission_id' = ANY(:ids) ORDER BY id"), {"ids": ids}).all()
        time.sleep(1 if how == "kill" else 3)
        with session_scope(pg_url, readonly=True) as session:  # the paused worker added nothing since
            assert session.scalar(select(func.count()).select_from(Event).where(Event.mission_id.in_(ids))) == events
    finally:
        _stop(first, *([second] if second else []))
    _check_once(pg_url, ids)
    for mission_id in ids:
        # one job per attempt: the stalled one failed, the new one succeeded; a new epoch per attempt
        statuses = [status for mid, status in jobs if mid == mission_id]
        assert statuses[-1] == "succeeded", (mission_id, statuses, _logs(tmp_path))
        assert epochs[mission_id] == taken[mission_id] + (len(statuses) - 1)
    assert any(len([s for m, s in jobs if m == mid]) > 1 for mid in ids)  # at least one was taken over
    if how == "stop":  # the paused worker noticed, and stopped instead of writing
        assert "stops before its next write" in (tmp_path / "first.log").read_text()


def _jobs_of(url: str, mission_id: str) -> list[str]:
    with session_scope(url, readonly=True) as session:
        return list(session.scalars(text("SELECT status::text FROM procrastinate_jobs WHERE lock = :lock ORDER BY id"),
                                    {"lock": f"mission:{mission_id}"}))


def test_a_queued_mission_has_one_waiting_job_and_cancelling_cancels_it(pg_url: str, tmp_path: Path,
                                                                         model: FakeOpenAI) -> None:
    [mission_id] = _queue(pg_url, tmp_path, model, 1)
    assert _jobs_of(pg_url, mission_id) == ["todo"]  # deferred with the mission, in its transaction
    settings = Settings(home=tmp_path, database_url=pg_url, _env_file=None)
    with Runner(settings, migrate=False) as runner:
        runner.dispatch = MissionQueue.for_settings(settings)
        with session_scope(pg_url) as session:  # a message while it waits: the waiting job will read it
            runner.queued(session, mission_id)
        assert _jobs_of(pg_url, mission_id) == ["todo"]  # the queueing lock keeps one waiting job
        assert runner.cancel(mission_id, actor="test") == "cancelled"
    assert _jobs_of(pg_url, mission_id) == ["cancelled"]


def _dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_a_mission_whose_row_a_paused_worker_holds_does_not_hold_up_the_others(
        pg_url: str, tmp_path: Path, model: FakeOpenAI) -> None:
    """SIGSTOP can land inside a write: the paused worker then holds its mission's row lock. A session of the
    test plays that (one mission's row locked, never committed): the other missions are taken over meanwhile,
    and the held one once the lock is gone; each completes once."""
    import psycopg

    first = _worker(pg_url, tmp_path, model, "first")
    second = held = None
    try:
        ids = _queue(pg_url, tmp_path, model, 3)
        _wait(pg_url, ids, lambda: _turns(pg_url, ids) >= 3 * 4, 120, [first], tmp_path)
        os.kill(first.pid, signal.SIGSTOP)
        held = psycopg.connect(_dsn(pg_url))
        held.execute("SELECT id FROM missions WHERE id = %s FOR UPDATE", (ids[0],))
        second = _worker(pg_url, tmp_path, model, "second")
        _wait(pg_url, ids, lambda: _done(pg_url, ids[1:]), 120, [second], tmp_path)
        with session_scope(pg_url, readonly=True) as session:
            assert session.get(Mission, ids[0]).status == "running"  # its takeover waits for the lock
        held.rollback()
        _wait(pg_url, ids, lambda: _done(pg_url, ids), 120, [second], tmp_path)
    finally:
        if held is not None:
            held.close()
        _stop(first, *([second] if second else []))
    _check_once(pg_url, ids)
    assert "not replaced yet" in (tmp_path / "second.log").read_text()  # it tried, gave way, tried again


def test_a_worker_process_has_postgresql_end_its_sessions_left_idle_in_a_transaction(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's sessions carry an idle-in-transaction limit of ``worker_stalled_s``: a worker paused inside a
    transaction loses its session, and its row locks, once it counts as stalled."""
    import psycopg

    from orchestrator.jobs import _end_frozen_transactions

    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=60000")  # what the environment sets is kept
    _end_frozen_transactions(2.5)
    with psycopg.connect(_dsn(pg_url)) as conn:
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "2500ms"
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1min"
    frozen = psycopg.connect(_dsn(pg_url))
    frozen.execute("SELECT 1")  # a transaction begun, then nothing: as a paused process
    time.sleep(4)
    with pytest.raises(psycopg.Error, match="idle-in-transaction"):
        frozen.execute("SELECT 1")
    frozen.close()
