"""Test-only launcher: the real API server (uvicorn) or a headless worker, with scripted chat models.

    python -m tests.support.serve_scripted --scenario full --port 8765       # API + runner pool
    python -m tests.support.serve_scripted --scenario full --worker          # runner pool only

Settings come from the environment (``ORCH_HOME``, ``ORCH_DATABASE_URL``...), as for ``orchestrator serve``.
"""

from __future__ import annotations

import argparse
import signal
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--worker", action="store_true", help="No HTTP: only the runner pool.")
    args = parser.parse_args()

    from orchestrator.api.logs import configure_logging
    from orchestrator.config import get_settings
    from tests.support.mission_scripts import SCENARIOS, PerMissionScripts

    settings = get_settings()
    configure_logging(json_lines=True)
    scripts = PerMissionScripts(SCENARIOS[args.scenario])
    if args.worker:
        from orchestrator.api.workers import WorkerPool
        from orchestrator.db.schema import upgrade

        upgrade(settings.resolved_database_url)
        pool = WorkerPool(settings, model_factory=scripts.factory)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        pool.start()
        while not stop.wait(0.5):
            pass
        pool.stop()
        return
    import uvicorn

    from orchestrator.api.app import create_app

    app = create_app(settings, model_factory=scripts.factory)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
