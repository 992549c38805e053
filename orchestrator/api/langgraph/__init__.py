"""The LangGraph Platform / Agent Protocol API subset, so that ``langgraph-sdk``, LangGraph Studio and Agent
Chat UI drive missions: threads are missions, runs are stretches of their trail, gates are interrupts.

It runs on the same runner, worker pool, records and rules as ``/api/v1``: the same keys and roles (sent as
``X-Api-Key`` or ``Authorization: Bearer``), the same hash-bound decisions, the same event trail.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from orchestrator.api.langgraph import assistants, runs, threads
from orchestrator.config import Settings

__all__ = ["register", "ROUTERS"]

ROUTERS = (assistants.router, threads.router, runs.router)


def register(app: FastAPI, settings: Settings) -> None:
    """Add the routes at the root (where LangGraph clients look for them), and CORS when it is configured."""
    for router in ROUTERS:
        app.include_router(router)
    if settings.cors_origins:
        # Keys travel in headers, never cookies: no credentials mode. Clients read the run's place from
        # Content-Location and reconnect to Location.
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["Content-Location", "Location"])
