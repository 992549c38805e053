"""One router per resource, all under ``/api/v1`` except the health probes and metrics."""

from orchestrator.api.routers import (
                                      agents,
                                      approvals,
                                      artifacts,
                                      audit,
                                      delegations,
                                      events,
                                      health,
                                      me,
                                      mission_actions,
                                      missions,
                                      workspaces,
)

__all__ = ["API_ROUTERS", "health"]

API_ROUTERS = (missions.router, mission_actions.router, events.router, approvals.router, delegations.router,
               audit.router, artifacts.router, agents.router, workspaces.router, me.router)
