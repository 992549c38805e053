"""API throughput against the same server's ``/healthz``: authenticated reads and creates, 50 clients.

Starts ``orchestrator serve --workers 0`` (no runner threads: only the API is measured) on a free loopback
port with a temporary home (SQLite, or ``--database-url``), seeds ``--missions`` missions, creates an admin key,
then measures in rounds, each round every endpoint for ``--seconds`` with ``--clients`` connections:

* baseline ``GET /healthz`` (no auth, no database), measured again in every round;
* ``GET /api/v1/me``, ``GET /api/v1/missions/{id}``, ``GET /api/v1/missions?limit=20`` (reads);
* ``POST /api/v1/missions`` (create: a mission, its steps and its first event in one transaction).

The load comes from ``wrk`` (``apt-get install wrk``: one C thread, far from being the bottleneck); without
it, from ``--processes`` Python client processes, which share the CPU with the server (said in the output).
Each ratio is an endpoint's requests per second over ``/healthz``'s in the same round; the median over
rounds is printed against its target (reads >= 0.50, create >= 0.30). Beside it, in parentheses, the same
ratio from the server's own CPU time per request, which holds when other processes share the machine.

Usage: python bench/api_latency.py [--seconds 5] [--rounds 3] [--clients 50] [--missions 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port, wait_healthy  # noqa: E402

READ_TARGET, CREATE_TARGET = 0.50, 0.30
CREATE_BODY = {"text": "Mission: bench", "workspace": "bench"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    target: float | None


@dataclass(frozen=True)
class Rate:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_ms: float | None = None
    """The server's CPU time per request: what the request costs, however much CPU others on the machine take."""


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _seed(url: str, *, count: int, workspace: Path) -> str:
    """``count`` queued missions, written directly; returns the id of one in the middle."""
    from orchestrator.db import session_scope
    from orchestrator.db.missions import create_mission
    from orchestrator.db.schema import upgrade
    from orchestrator.mission import parse_mission

    upgrade(url)
    ids = []
    with session_scope(url) as session:
        for i in range(count):
            text = f"Mission: seeded {i}"
            ids.append(create_mission(session, text=text, spec=parse_mission(text).model_dump(mode="json"),
                                      workspace=str(workspace), owner="bench").id)
    return ids[len(ids) // 2]


# -- load with wrk ----------------------------------------------------------------------------------------------

_WRK_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {key}"
{body}
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(base: str, key: str, endpoint: Endpoint, *, seconds: float, clients: int, scratch: Path) -> Rate:
    body = ""
    if endpoint.method == "POST":
        body = (f'wrk.body = {json.dumps(json.dumps(CREATE_BODY))}\n'
                'wrk.headers["Content-Type"] = "application/json"')
    script = scratch / "bench.lua"
    script.write_text(_WRK_SCRIPT.format(method=endpoint.method, key=key, body=body))
    proc = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                           "-s", str(script), base + endpoint.path], capture_output=True, text=True, check=True)
    match = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", proc.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{proc.stdout}\n{proc.stderr}")
    requests, duration_us, bad_status, socket_errors, timeouts, p50_us, p99_us = map(int, match.groups())
    if requests == 0:
        raise RuntimeError(f"{endpoint.name}: no answer in {seconds:g} s (is the machine saturated?)")
    if bad_status or socket_errors or timeouts:
        raise RuntimeError(f"{endpoint.name}: {bad_status} non-2xx answers, {socket_errors} socket errors, "
                           f"{timeouts} timeouts out of {requests} requests")
    return Rate(rps=requests / (duration_us / 1e6), p50_ms=p50_us / 1000, p99_ms=p99_us / 1000, requests=requests)


# -- load from Python processes (without wrk) ------------------------------------------------------------------

def _client_process(base: str, key: str, method: str, path: str, seconds: float, clients: int,
                    out: multiprocessing.Queue) -> None:
    import asyncio

    import httpx

    async def run() -> list[float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                                     limits=limits) as client:
            async def worker() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await client.request(method, path, json=CREATE_BODY if method == "POST" else None)
                    if response.status_code >= 400:
                        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies

    out.put(asyncio.run(run()))


def _processes(base: str, key: str, endpoint: Endpoint, *, seconds: float, clients: int, processes: int) -> Rate:
    out: multiprocessing.Queue = multiprocessing.Queue()
    share = max(1, clients // processes)
    started = time.perf_counter()
    workers = [multiprocessing.Process(target=_client_process,
                                       args=(base, key, endpoint.method, endpoint.path, seconds, share, out))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    latencies = [value for _ in workers for value in out.get(timeout=seconds + 120)]
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Rate(rps=len(latencies) / elapsed, p50_ms=latencies[len(latencies) // 2] * 1000,
                p99_ms=latencies[int(0.99 * (len(latencies) - 1))] * 1000, requests=len(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--missions", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=3, help="client processes when wrk is not used")
    parser.add_argument("--load", choices=("auto", "wrk", "processes"), default="auto",
                        help="the load client (auto: wrk when installed)")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary home")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    workspace = home / "workspaces" / "bench"
    workspace.mkdir(parents=True)
    url = args.database_url or f"sqlite:///{home / 'orchestrator.db'}"
    port = free_port()
    env = {**os.environ, "ORCH_HOME": str(home), "ORCH_DATABASE_URL": url, "ORCH_PORT": str(port),
           "ORCH_HOST": "127.0.0.1", "ORCH_LOG_JSON": "true"}
    mission_id = _seed(url, count=args.missions, workspace=workspace)
    cli = [sys.executable, "-m", "orchestrator.cli"]
    key = subprocess.run([*cli, "keys", "create", "--role", "admin", "--name", f"bench-{port}"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    endpoints = [Endpoint("GET /healthz (baseline)", "GET", "/healthz", None),
                 Endpoint("GET /api/v1/me", "GET", "/api/v1/me", READ_TARGET),
                 Endpoint("GET /api/v1/missions/{id}", "GET", f"/api/v1/missions/{mission_id}", READ_TARGET),
                 Endpoint("GET /api/v1/missions?limit=20", "GET", "/api/v1/missions?limit=20", READ_TARGET),
                 Endpoint("POST /api/v1/missions", "POST", "/api/v1/missions", CREATE_TARGET)]
    with_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    if with_wrk and shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk, or --load processes")
    log = open(home / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen([*cli, "serve", "--workers", "0"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    rates: dict[str, list[Rate]] = {e.name: [] for e in endpoints}
    ratios: dict[str, list[float]] = {e.name: [] for e in endpoints[1:]}
    try:
        wait_healthy(base, server, lambda: (home / "server.log").read_text()[-3000:], timeout=300)

        def measure(endpoint: Endpoint, seconds: float) -> Rate:
            cpu_before = _cpu_seconds(server.pid)
            if with_wrk:
                rate = _wrk(base, key, endpoint, seconds=seconds, clients=args.clients, scratch=home)
            else:
                rate = _processes(base, key, endpoint, seconds=seconds, clients=args.clients,
                                  processes=args.processes)
            cpu_after = _cpu_seconds(server.pid)
            if cpu_before is None or cpu_after is None:
                return rate
            return replace(rate, cpu_ms=(cpu_after - cpu_before) * 1000 / rate.requests)

        for endpoint in endpoints[:-1]:  # warm-up: imports, caches, connections (on a busy machine the first
            try:                         # answers may take longer than the warm-up: they are not measured)
                measure(endpoint, 2)
            except RuntimeError:
                pass
        for _ in range(args.rounds):
            baseline = measure(endpoints[0], args.seconds)
            rates[endpoints[0].name].append(baseline)
            for endpoint in endpoints[1:]:
                rate = measure(endpoint, args.seconds)
                rates[endpoint.name].append(rate)
                ratios[endpoint.name].append(rate.rps / baseline.rps)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    client = ("wrk, 1 thread" if with_wrk
              else f"{args.processes} Python client processes (no wrk: they share the CPU with the server)")
    database = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"{args.clients} connections ({client}), {args.rounds} rounds of {args.seconds:g} s per endpoint, "
          f"{database}, {args.missions} missions seeded, {os.cpu_count()} CPUs; medians over rounds")
    print(f"  {'endpoint':<32} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms':>7}   "
          "req/s ratio to /healthz (same round); CPU cost ratio")
    failed = []
    baseline_cpu = [r.cpu_ms for r in rates[endpoints[0].name]]
    for endpoint in endpoints:
        rows = rates[endpoint.name]
        cpu = [r.cpu_ms for r in rows]
        line = (f"  {endpoint.name:<32} {statistics.median(r.rps for r in rows):7.0f} "
                f"{statistics.median(r.p50_ms for r in rows):7.1f} {statistics.median(r.p99_ms for r in rows):7.1f} "
                + (f"{statistics.median(cpu):7.2f}" if None not in cpu else f"{'-':>7}"))  # type: ignore[type-var]
        if endpoint.target is not None:
            ratio = statistics.median(ratios[endpoint.name])
            met = ratio >= endpoint.target
            failed += [] if met else [endpoint.name]
            line += f"   {ratio:5.2f}  target >= {endpoint.target:.2f}  {'met' if met else 'NOT MET'}"
            if None not in cpu and None not in baseline_cpu:
                # Per-request CPU of /healthz over this endpoint's: the ratio on a machine nobody else uses.
                line += f"   ({statistics.median(b / c for b, c in zip(baseline_cpu, cpu)):4.2f})"  # type: ignore[operator]
        print(line)
    print("all targets met" if not failed else f"targets not met: {', '.join(failed)}")


if __name__ == "__main__":
    main()
