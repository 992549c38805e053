"""The API application: routers under ``/api/v1``, problem+json errors, the web page, the runner pool."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from orchestrator.api.deps import Service
from orchestrator.api.metrics import metrics_registry
from orchestrator.api.problems import install_problem_handlers, problem
from orchestrator.api.routers import API_ROUTERS, health, monitoring, procedure
from orchestrator.api.routers.missions import LIMITS
from orchestrator.api.schemas import Problem
from orchestrator.api.storable import refuse_unstorable
from orchestrator.config import Settings, get_settings
from orchestrator.context import ModelFactory
from orchestrator.errors import ConfigError

__all__ = ["create_app", "API_PREFIX", "is_loopback"]

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
_DESCRIPTION = """Submit ML-engineering missions, follow them live (Server-Sent Events), decide their human gates
and pull their audit trail. Every route except the probes (`/healthz`, `/readyz`) and the web page needs
`Authorization: Bearer KEY` (keys: `orchestrator keys create --role submitter|approver|auditor|admin`).
Errors are `application/problem+json`."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_dev_mode(settings: Settings) -> None:
    if not settings.dev_no_auth:
        return
    if not is_loopback(settings.host):
        raise ConfigError(f"ORCH_DEV_NO_AUTH=true is only allowed when binding to loopback, not {settings.host!r}; "
                          "unset it or set ORCH_HOST=127.0.0.1")
    log.warning("!!! DEVELOPMENT MODE: ORCH_DEV_NO_AUTH=true, every request is treated as an admin without a key "
                "(bound to %s only) !!!", settings.host)


def _web_dir() -> Path:
    import web

    # An editable install made before web/__init__.py existed sees ``web`` as a namespace package.
    return Path(web.__file__).parent if web.__file__ else Path(next(iter(web.__path__)))


def _openapi_with_problem(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                         tags=app.openapi_tags)
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
    app.openapi_schema = schema
    return schema


def _mount_web(app: FastAPI) -> None:
    web_dir = _web_dir()

    @app.get("/", include_in_schema=False)
    def read_index() -> Response:
        index = web_dir / "index.html"
        if not index.is_file():
            return problem(404, "the web page is not built yet (web/index.html)")
        return FileResponse(index, media_type="text/html")

    app.mount("/static", StaticFiles(directory=web_dir, check_dir=False), name="static")


def create_app(settings: Settings | None = None, *, model_factory: ModelFactory | None = None,
               start_workers: bool = True) -> FastAPI:
    """The API app on these settings; ``model_factory`` replaces the chat models (tests), workers optional."""
    from orchestrator.runner import Runner

    settings = settings or get_settings()
    _check_dev_mode(settings)
    runner = Runner(settings, **({"model_factory": model_factory} if model_factory is not None else {}))
    from orchestrator.jobs import MissionQueue

    runner.dispatch = MissionQueue.for_settings(settings)  # PostgreSQL: each queued mission defers a job
    service = Service(settings=settings, runner=runner)
    service.extras["metrics_registry"] = metrics_registry(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_workers and runner.dispatch is not None:  # procrastinate's worker, in this process
            from orchestrator.jobs import JobWorker

            service.pool = JobWorker(settings, model_factory=model_factory)
            service.pool.start()
        elif start_workers:
            from orchestrator.api.workers import WorkerPool

            service.pool = WorkerPool(settings, model_factory=model_factory)
            service.pool.start()
        try:
            yield
        finally:
            if service.pool is not None:
                service.pool.stop()
                service.pool = None

    app = FastAPI(title="ML Orchestrator API", version="1", description=_DESCRIPTION, lifespan=lifespan,
                  dependencies=[Depends(refuse_unstorable)])
    app.state.service = service
    install_problem_handlers(app)

    @app.middleware("http")
    async def cap_uploads(request: Request, call_next):  # noqa: ANN001, ANN202
        # Refuse an oversized upload before its body is spooled to disk.
        if request.url.path.endswith("/missions/upload"):
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > LIMITS.max_upload_bytes + 1_000_000:
                return problem(413, f"the upload is larger than the {LIMITS.max_upload_bytes} byte limit")
        return await call_next(request)

    app.include_router(health.router)
    for router in (*API_ROUTERS, procedure.router, monitoring.router):
        app.include_router(router, prefix=API_PREFIX)
    from orchestrator.api import langgraph  # the LangGraph Platform API subset, at the root where clients look

    langgraph.register(app, settings)
    _mount_web(app)
    app.openapi = lambda: _openapi_with_problem(app)  # type: ignore[method-assign]
    from orchestrator.telemetry import instrument_app

    instrument_app(app)  # request spans when tracing is on (the runner above configured it from the settings)
    return app
