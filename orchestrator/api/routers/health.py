"""Probes and metrics: liveness and readiness (both open: probes carry no key), Prometheus text."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from orchestrator.api.deps import ServiceDep, ServiceReader
from orchestrator.api.problems import PROBLEM_RESPONSES, problem
from orchestrator.api.schemas import HealthPublic
from orchestrator.db import engine_for
from orchestrator.db.schema import current_revision, head_revision

__all__ = ["router"]

router = APIRouter(tags=["health"])
_head_revision = lru_cache(maxsize=4)(head_revision)
"""The migrations shipped with this process do not change while it runs: read them once, not per probe."""


@router.get("/healthz", response_model=HealthPublic)
def read_health() -> HealthPublic:
    """Liveness: the process answers."""
    return HealthPublic(status="ok")


@router.get("/readyz", response_model=HealthPublic,
            responses={**PROBLEM_RESPONSES, 503: PROBLEM_RESPONSES[409] | {"description": "Not ready"}})
def read_ready(service: ServiceDep) -> HealthPublic | JSONResponse:
    """Readiness: the database answers and its schema is at the latest migration (open, for probes)."""
    try:
        with engine_for(service.url).connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = current_revision(service.url), _head_revision(service.url)
    except Exception as exc:  # any driver error means not ready
        return problem(503, f"database unreachable: {type(exc).__name__}")
    if current != head:
        return problem(503, f"database schema at {current}, migrations head is {head}: run `orchestrator db upgrade`")
    return HealthPublic(status="ready", detail=f"schema at {head}")


@router.get("/metrics", response_class=Response, responses={
    **PROBLEM_RESPONSES, 200: {"description": "Prometheus text format.",
                               "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
def read_metrics(service: ServiceDep, caller: ServiceReader) -> Response:
    """Prometheus metrics, computed from the database at scrape time."""
    registry = service.extras["metrics_registry"]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)  # type: ignore[arg-type]
