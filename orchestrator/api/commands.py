"""Service commands: ``serve`` (API + missions), ``worker`` (missions only), ``keys`` (API keys)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Annotated

import typer

__all__ = ["register"]

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create (shown once), list, revoke.")


def _settings(**overrides: object):  # noqa: ANN202
    from orchestrator.config import get_settings

    settings = get_settings()
    changes = {key: value for key, value in overrides.items() if value is not None}
    return settings.model_copy(update=changes) if changes else settings


def _logging(settings) -> None:  # noqa: ANN001
    from orchestrator.api.logs import configure_logging

    # JSON lines when asked for, or when nobody reads the terminal (a service manager, a container).
    configure_logging(json_lines=settings.log_json or not sys.stderr.isatty())


def serve(host: Annotated[str | None, typer.Option(help="Bind address (ORCH_HOST).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (ORCH_PORT).")] = None,
          workers: Annotated[int | None, typer.Option(help="Missions run at once in this process "
                                                       "(ORCH_RUNNER_WORKERS); 0: none.")] = None,
          api_only: Annotated[bool, typer.Option("--api-only", help="Serve the API only; missions run on "
                                                 "`orchestrator worker` processes (same as --workers 0).")] = False
          ) -> None:
    """Serve the API and the web page, and run missions in this process unless --api-only."""
    import uvicorn

    from orchestrator.api.app import create_app

    settings = _settings(host=host, port=port, runner_workers=0 if api_only else workers)
    _logging(settings)
    app = create_app(settings, start_workers=settings.runner_workers > 0)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, proxy_headers=False)


def worker(workers: Annotated[int | None, typer.Option(help="Missions run at once (ORCH_RUNNER_WORKERS).")] = None
           ) -> None:
    """Run missions without serving HTTP (another process, or machine, on the same database): procrastinate's
    worker on PostgreSQL, the thread pool on SQLite."""
    from orchestrator.api.workers import WorkerPool
    from orchestrator.db.schema import upgrade
    from orchestrator.jobs import run_worker, uses_jobs

    settings = _settings(runner_workers=workers)
    _logging(settings)
    upgrade(settings.resolved_database_url)
    if uses_jobs(settings):
        run_worker(settings, concurrency=settings.runner_workers)
        return
    pool = WorkerPool(settings, size=settings.runner_workers)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool.start()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()


@keys_app.command("create")
def keys_create(role: Annotated[str, typer.Option(help="submitter, approver, auditor or admin.")],
                name: Annotated[str | None, typer.Option(help="Recorded as the actor (default: ROLE-PREFIX).")] = None
                ) -> None:
    """Create an API key; the key itself is printed once, as the last line."""
    from orchestrator.api.keys import create_key
    from orchestrator.db import session_scope
    from orchestrator.db.schema import upgrade

    url = _settings().resolved_database_url
    upgrade(url)
    with session_scope(url) as session:
        row, key = create_key(session, role=role, name=name)
        print(f"created key {row.name!r} (role {row.role}, prefix {row.prefix}); it is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")] = False) -> None:
    """List API keys (name, role, prefix, created, revoked); never the keys themselves."""
    from orchestrator.api.keys import list_keys
    from orchestrator.db import session_scope
    from orchestrator.db.schema import upgrade

    url = _settings().resolved_database_url
    upgrade(url)
    with session_scope(url) as session:
        rows = [{"name": k.name, "role": k.role, "prefix": k.prefix, "created_at": str(k.created_at),
                 "revoked_at": str(k.revoked_at) if k.revoked_at else None} for k in list_keys(session)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        print(f"{row['prefix']}  {row['role']:<9} {row['name']:<30} {state}")


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name or prefix.")]) -> None:
    """Revoke an API key at once."""
    from orchestrator.api.keys import revoke_key
    from orchestrator.db import session_scope

    with session_scope(_settings().resolved_database_url) as session:
        row = revoke_key(session, name_or_prefix=name)
        print(f"revoked key {row.name!r} ({row.prefix})")


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``worker`` and ``keys`` to the ``orchestrator`` command."""
    app.command()(serve)
    app.command()(worker)
    app.add_typer(keys_app, name="keys")
