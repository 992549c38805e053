"""The orchestrator API service: FastAPI routers over the same missions, records and rules as the CLI."""

from orchestrator.api.app import create_app

__all__ = ["create_app"]
