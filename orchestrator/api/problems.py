"""Errors as ``application/problem+json``: domain errors mapped to HTTP in one handler, framework errors alike."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.errors import (
    ConfigError,
    GuardrailViolation,
    InputError,
    InvalidTransition,
    LimitExceeded,
    MissionNotFound,
    OrchestratorError,
    ToolDenied,
    ToolError,
)

__all__ = ["install_problem_handlers", "problem", "PROBLEM_RESPONSES", "status_for"]

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

# Most specific first: subclasses before their parents.
_STATUS: tuple[tuple[type[OrchestratorError], int], ...] = (
    (MissionNotFound, 404),
    (InvalidTransition, 409),  # ApprovalStale included
    (InputError, 422),
    (ToolDenied, 403),
    (ToolError, 400),
    (GuardrailViolation, 403),
    (LimitExceeded, 429),
    (ConfigError, 500),
)

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": HTTPStatus(code).phrase, "content": {MEDIA_TYPE: {"schema": {"$ref":
                                                                                      "#/components/schemas/Problem"}}}}
    for code in (400, 401, 403, 404, 409, 422)
}


def status_for(exc: OrchestratorError) -> int:
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 500


def problem(status: int, detail: str, *, title: str | None = None, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title or HTTPStatus(status).phrase, "status": status,
                            "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrchestratorError)
    code = status_for(exc)
    if code >= 500:
        # The message may name paths or settings: log it, show a safe one.
        log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
        return problem(code, "the server is misconfigured; the operator can find the cause in its log")
    return problem(code, str(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": ".".join(str(part) for part in err.get("loc", ())), "message": err.get("msg", ""),
               "type": err.get("type", "")} for err in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return problem(422, detail, title="Invalid request", errors=errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error; the operator can find it in the server log")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OrchestratorError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
