"""Missions per worker process with a chat model of realistic latency, against the ideal for that latency.

Starts a local fake chat model speaking OpenAI's chat-completions protocol (``tests/support/fake_openai.py``,
loopback only: every agent's answer comes after ``--latency`` seconds; the lead lists files, hands off in two
steps and finishes each step, a sub-agent submits its result), then ``--workers`` processes of
``orchestrator worker --workers CONCURRENCY`` with ``ORCH_MODEL=openai:fake-model`` and
``ORCH_MODEL_BASE_URL`` pointing at it. Each process first runs one warm-up mission; then ``--missions``
missions are queued at once and timed until the last one ends.

Ideal: a mission takes ``answers x latency`` when nothing but the model costs time; ``--missions`` missions on
``workers x concurrency`` slots take ``ceil(missions / slots)`` such rounds. Printed: missions per minute
against that ideal (target >= 0.80), memory per waiting mission (the worker's proportional set size at the
moment most missions waited on the model, less its size once warm, over the missions waiting), the
database's write rate, the worker's CPU per mission; then that every mission completed exactly once (one
claim, one run, every tool call once) with an intact audit chain.

On SQLite (the default: a temporary file) each worker runs the in-process pool; on PostgreSQL
(``--database-url postgresql+psycopg://...`` or ``--postgres``: a temporary database on the local server) each
runs procrastinate's worker. ``--workers 4`` and ``--workers 1`` in one run: ``--compare-workers 4``.

Usage: python bench/concurrent_missions.py [--missions 32] [--latency 0.5] [--concurrency 32] [--workers 1]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fake_openai import FakeOpenAI, fake_openai

RATIO_TARGET = 0.80
MISSION = """/agent ml-engineer
Mission: Productionize the churn model {n} with batch scoring.
Inputs: models/churn/, data/reference.csv.
Constraints: nightly within 2 hours.
Expected Deliverables: pipeline, monitoring, deployment notes.
Validation: integration tests.
"""


@dataclass
class Outcome:
    """One timed run."""

    workers: int
    concurrency: int
    missions: int
    latency: float
    answers_per_mission: float
    wall_s: float
    ideal_per_min: float
    per_min: float
    mem_per_waiting_mb: float | None
    most_waiting: int
    rows_per_s: float
    commits_per_s: float | None
    cpu_per_mission_ms: float
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.per_min / self.ideal_per_min


def _pss_kb(pid: int) -> int:
    """Proportional set size of a process (shared pages split between their users), in kB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def _rows_written(url: str) -> int:
    """Rows in every table (records and checkpoints): what the run added, read before and after."""
    from sqlalchemy import inspect, text

    from orchestrator.db import engine_for

    engine = engine_for(url)
    with engine.connect() as conn:
        names = [n for n in inspect(conn).get_table_names() if not n.startswith(("alembic", "procrastinate"))]
        return sum(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names)


def _commits(url: str) -> int | None:
    if not url.startswith("postgresql"):
        return None
    from sqlalchemy import text

    from orchestrator.db import engine_for

    with engine_for(url).connect() as conn:
        return int(conn.execute(text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
                   .scalar_one())


def _settings(url: str, home: Path, server: FakeOpenAI):
    from orchestrator.config import Settings

    return Settings(home=home, database_url=url, model="openai:fake-model", model_base_url=server.base_url,
                    model_api_key="fake", _env_file=None)


def _submitter(url: str, home: Path, server: FakeOpenAI):
    """A runner that queues missions the way the API does (deferring their jobs on PostgreSQL), never runs them."""
    from orchestrator.jobs import MissionQueue
    from orchestrator.runner import Runner

    settings = _settings(url, home, server)
    runner = Runner(settings, migrate=False)
    runner.dispatch = MissionQueue.for_settings(settings)
    return runner


def _queue(runner, home: Path, count: int, *, tag: str) -> list[str]:
    """Queue ``count`` missions (each on its own workspace, made first); their ids."""
    workspaces = []
    for n in range(count):
        workspace = home / "workspaces" / f"{tag}-{n}"
        workspace.mkdir(parents=True, exist_ok=True)
        workspaces.append(workspace)
    return [runner.create(MISSION.format(n=n), workspace=ws, owner="bench", auto_approve_by="bench").id
            for n, ws in enumerate(workspaces)]


def _statuses(url: str, ids: list[str]) -> dict[str, str]:
    from sqlalchemy import select

    from orchestrator.db import session_scope
    from orchestrator.db.models import Mission

    with session_scope(url, readonly=True) as session:
        return dict(session.execute(select(Mission.id, Mission.status).where(Mission.id.in_(ids))).all())


def _wait(url: str, ids: list[str], *, timeout: float, procs: list[subprocess.Popen], on_tick=None) -> float:
    started = time.monotonic()
    while True:
        statuses = _statuses(url, ids)
        if all(s not in ("queued", "running") for s in statuses.values()):
            return time.monotonic()
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}")
        if time.monotonic() - started > timeout:
            left = sum(s in ("queued", "running") for s in statuses.values())
            raise RuntimeError(f"{left} of {len(ids)} missions still queued or running after {timeout:.0f} s")
        if on_tick is not None:
            on_tick()
        time.sleep(0.05)


def check_missions(url: str, ids: list[str]) -> list[str]:
    """What is wrong with the finished missions: each must be completed once, from one claim, every step and
    tool call once, with an intact audit chain. Empty when all is well."""
    from sqlalchemy import func, select

    from orchestrator.audit import verify_chain
    from orchestrator.db import session_scope
    from orchestrator.db.models import Event, Mission, Step, ToolCall

    problems: list[str] = []
    with session_scope(url, readonly=True) as session:
        for mission_id in ids:
            mission = session.get(Mission, mission_id)
            if mission is None or mission.status != "completed":
                problems.append(f"{mission_id}: {mission.status if mission else 'missing'} "
                                f"({mission.error if mission else ''})")
                continue
            ends = [p["status"] for p in session.scalars(select(Event.payload).where(
                Event.mission_id == mission_id, Event.kind == "mission.status").order_by(Event.seq))]
            if ends != ["running", "completed"]:
                problems.append(f"{mission_id}: status trail {ends} (expected running, completed)")
            if mission.lease_epoch != 1:
                problems.append(f"{mission_id}: claimed {mission.lease_epoch} times")
            if session.scalar(select(func.max(Step.rounds)).where(Step.mission_id == mission_id)) != 1:
                problems.append(f"{mission_id}: a step ran more than one round")
            twice = session.scalar(select(func.count()).select_from(
                select(ToolCall.call_id).where(ToolCall.mission_id == mission_id).group_by(ToolCall.call_id)
                .having(func.count() > 1).subquery()))
            if twice:
                problems.append(f"{mission_id}: {twice} tool calls recorded twice")
            report = verify_chain(session, mission_id)
            if not report.intact:
                problems.append(f"{mission_id}: audit chain broken: {report.describe()}")
    return problems


def _start_workers(url: str, home: Path, server: FakeOpenAI, *, workers: int, concurrency: int,
                   log_dir: Path) -> list[subprocess.Popen]:
    env = {**os.environ, **server.env(), "ORCH_DATABASE_URL": url, "ORCH_HOME": str(home),
           "ORCH_RUNNER_WORKERS": str(concurrency), "ORCH_LOG_JSON": "false", "PYTHONPATH": str(ROOT)}
    env.pop("ORCH_MODEL_API_KEY", None)
    env.update(server.env())
    procs = []
    for index in range(workers):
        log = open(log_dir / f"worker-{index}.log", "w")  # noqa: SIM115 - kept open for the process's life
        procs.append(subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "worker", "--workers",
                                       str(concurrency)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def run_once(url: str, home: Path, server: FakeOpenAI, *, workers: int, concurrency: int, missions: int,
             timeout: float) -> Outcome:
    """Start the workers, warm each up with one mission, then time ``missions`` queued at once."""
    procs = _start_workers(url, home, server, workers=workers, concurrency=concurrency, log_dir=home)
    submitter = _submitter(url, home, server)
    try:
        warm = _queue(submitter, home, workers, tag=f"warm{workers}")
        _wait(url, warm, timeout=180, procs=procs)
        time.sleep(0.5)
        base_pss = [_pss_kb(p.pid) for p in procs]
        base_cpu = sum(_cpu_s(p.pid) for p in procs)
        before = server.stats()
        rows0, commits0 = _rows_written(url), _commits(url)
        peak = {"waiting": 0, "pss": 0}
        lock = threading.Lock()

        def sample() -> None:
            waiting = server.stats()["waiting"]
            pss = sum(_pss_kb(p.pid) - b for p, b in zip(procs, base_pss, strict=True))
            with lock:
                if waiting > peak["waiting"] or (waiting == peak["waiting"] and pss > peak["pss"]):
                    peak.update(waiting=waiting, pss=pss)

        t0 = time.monotonic()
        ids = _queue(submitter, home, missions, tag=f"run{workers}")
        t1 = _wait(url, ids, timeout=timeout, procs=procs, on_tick=sample)
        wall = t1 - t0
        cpu = sum(_cpu_s(p.pid) for p in procs) - base_cpu
        after = server.stats()
        rows1, commits1 = _rows_written(url), _commits(url)
        answers = (after["answers"] - before["answers"]) / missions
        slots = workers * concurrency
        ideal_wall = math.ceil(missions / slots) * answers * server.latency
        problems = check_missions(url, [*warm, *ids])
        return Outcome(workers=workers, concurrency=concurrency, missions=missions, latency=server.latency,
                       answers_per_mission=answers, wall_s=wall, ideal_per_min=missions / ideal_wall * 60,
                       per_min=missions / wall * 60,
                       mem_per_waiting_mb=(peak["pss"] / 1024 / peak["waiting"]) if peak["waiting"] else None,
                       most_waiting=peak["waiting"], rows_per_s=(rows1 - rows0) / wall,
                       commits_per_s=(commits1 - commits0) / wall if commits0 is not None else None,
                       cpu_per_mission_ms=cpu / missions * 1000, problems=problems)
    finally:
        submitter.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _database(args: argparse.Namespace, home: Path) -> tuple[str, str | None]:
    """The database URL, and the PostgreSQL database to drop afterwards (one made for this run)."""
    from orchestrator.db.schema import upgrade

    if args.database_url:
        url, made = args.database_url, None
    elif args.postgres:
        from tests.support.databases import create_pg_database

        url, made = create_pg_database()
    else:
        url, made = f"sqlite:///{home / 'orchestrator.db'}", None
    upgrade(url)
    return url, made


def report(outcome: Outcome) -> str:
    mem = f"{outcome.mem_per_waiting_mb:.2f} MB" if outcome.mem_per_waiting_mb is not None else "n/a"
    commits = f", {outcome.commits_per_s:.0f} commits/s" if outcome.commits_per_s is not None else ""
    verdict = "ok" if outcome.ratio >= RATIO_TARGET else "BELOW TARGET"
    need = outcome.cpu_per_mission_ms / 1000 * outcome.ideal_per_min / 60 / outcome.workers
    chain = "yes" if not outcome.problems else "NO"
    lines = [
        (f"{outcome.workers} worker process(es) x {outcome.concurrency} concurrent missions, {outcome.missions} "
         f"missions, {outcome.latency * 1000:.0f} ms per model answer, {outcome.answers_per_mission:.1f} answers "
         "per mission"),
        (f"  missions per minute: {outcome.per_min:.1f}  ideal {outcome.ideal_per_min:.1f}  ratio "
         f"{outcome.ratio:.2f} (target >= {RATIO_TARGET:.2f}: {verdict}); wall {outcome.wall_s:.1f} s"),
        f"  memory per waiting mission: {mem} (at {outcome.most_waiting} missions waiting on the model at once)",
        (f"  database writes: {outcome.rows_per_s:.0f} rows/s{commits}; worker CPU per mission "
         f"{outcome.cpu_per_mission_ms:.0f} ms, so the ideal rate needs {need:.0%} of a core per worker process "
         "(over 100%, or a machine whose other load leaves less, caps the ratio)"),
        f"  every mission completed exactly once with an intact chain: {chain}",
    ]
    lines += [f"    {problem}" for problem in outcome.problems[:10]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missions", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per model answer")
    parser.add_argument("--concurrency", type=int, default=None, help="missions at once per worker process "
                        "(ORCH_RUNNER_WORKERS; default: --missions over --workers)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--compare-workers", type=int, default=None,
                        help="also run this many worker processes on --missions x N missions, and print the "
                             "missions-per-minute ratio to one process (scale-out target >= 3x for 4)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--postgres", action="store_true", help="a temporary database on the local PostgreSQL")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="concurrent-missions-"))
    url, made = _database(args, home)
    print(f"database: {url.split('@')[-1]}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
          flush=True)
    failed = False
    try:
        with fake_openai(latency=args.latency) as server:
            concurrency = args.concurrency or max(1, math.ceil(args.missions / args.workers))
            one = run_once(url, home, server, workers=args.workers, concurrency=concurrency,
                           missions=args.missions, timeout=args.timeout)
            print(report(one), flush=True)
            failed = bool(one.problems)
            if args.compare_workers:
                many = run_once(url, home, server, workers=args.compare_workers, concurrency=concurrency,
                                missions=args.missions * args.compare_workers, timeout=args.timeout)
                print(report(many), flush=True)
                scale = many.per_min / one.per_min
                print(f"scale-out: {args.compare_workers} worker processes carry {scale:.2f}x the missions per "
                      f"minute of {args.workers} (target >= {0.75 * args.compare_workers / args.workers:.1f}x); "
                      f"no mission run twice: {'yes' if not many.problems else 'NO'}", flush=True)
                failed = failed or bool(many.problems)
    finally:
        from orchestrator.db.engine import engine_for

        engine_for(url).dispose()
        if made:
            from tests.support.databases import drop_pg_database

            drop_pg_database(made)
        shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
