"""Create-mission latency under 50 concurrent clients, against a minimal endpoint of the same server.

Starts ``orchestrator serve`` (no runner threads, so only the API is measured) on a free loopback port
with a temporary home and SQLite database, creates an admin key, then measures in the same run:

* baseline: ``GET /healthz`` (a minimal FastAPI endpoint: no auth, no database);
* ``POST /api/v1/missions`` (auth lookup, workspace check, mission + steps + audit event in one transaction).

Prints p50/p99 of each and their ratios.   Usage: python bench/api_latency.py [--requests 1000] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port, wait_healthy  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _measure(base: str, headers: dict[str, str], *, method: str, path: str, body: dict | None, total: int,
                   clients: int) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as client:
        async def worker() -> None:
            for i in counter:
                payload = {**body, "text": f"{body['text']} #{i}"} if body else None
                started = time.perf_counter()
                response = await client.request(method, path, json=payload)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 400:
                    raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    (home / "workspaces" / "bench").mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "ORCH_HOME": str(home), "ORCH_PORT": str(port), "ORCH_HOST": "127.0.0.1",
           "ORCH_LOG_JSON": "true"}
    cli = [sys.executable, "-m", "orchestrator.cli"]
    key = subprocess.run([*cli, "keys", "create", "--role", "admin", "--name", "bench"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    log = open(home / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen([*cli, "serve", "--workers", "0"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server, lambda: (home / "server.log").read_text()[-3000:])
        headers = {"Authorization": f"Bearer {key}"}
        warm = min(100, args.requests)
        asyncio.run(_measure(base, headers, method="GET", path="/healthz", body=None, total=warm,
                             clients=args.clients))
        baseline = asyncio.run(_measure(base, headers, method="GET", path="/healthz", body=None,
                                        total=args.requests, clients=args.clients))
        create = asyncio.run(_measure(base, headers, method="POST", path="/api/v1/missions",
                                      body={"text": "Mission: bench", "workspace": "bench"}, total=args.requests,
                                      clients=args.clients))
    finally:
        server.terminate()
        server.wait(timeout=10)
    rows = [("GET /healthz (baseline)", baseline), ("POST /api/v1/missions", create)]
    print(f"{args.requests} requests per endpoint, {args.clients} concurrent clients, loopback, SQLite")
    for name, values in rows:
        print(f"  {name:<26} p50 {_percentile(values, 0.5):8.1f} ms   p99 {_percentile(values, 0.99):8.1f} ms   "
              f"mean {statistics.fmean(values):8.1f} ms")
    print(f"  ratio create/baseline      p50 {_percentile(create, 0.5) / _percentile(baseline, 0.5):6.1f}x     "
          f"p99 {_percentile(create, 0.99) / _percentile(baseline, 0.99):6.1f}x")


if __name__ == "__main__":
    main()
