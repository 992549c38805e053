"""Prometheus metrics computed from the database at scrape time (so every process reports the same truth)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from orchestrator.db import session_scope
from orchestrator.db.missions import MissionStatus
from orchestrator.db.models import Approval, Delegation, Mission, Step, ToolCall

__all__ = ["DatabaseCollector", "metrics_registry"]

_STEP_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class DatabaseCollector(Collector):
    """Missions by status, step durations, handoffs, approvals waiting, tool calls and their errors."""

    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self) -> Iterator[object]:
        with session_scope(self.url, readonly=True) as session:
            by_status = dict(session.execute(select(Mission.status, func.count()).group_by(Mission.status)).all())
            steps = session.execute(select(Step.name, Step.started_at, Step.finished_at)
                                    .where(Step.started_at.is_not(None), Step.finished_at.is_not(None))).all()
            handoffs = session.execute(select(Delegation.from_agent, Delegation.to_agent, Delegation.reason,
                                              func.count()).group_by(Delegation.from_agent, Delegation.to_agent,
                                                                     Delegation.reason)).all()
            waiting = session.scalar(select(func.count()).select_from(Approval)
                                     .where(Approval.status == "pending")) or 0
            calls = session.execute(select(ToolCall.tool, ToolCall.status, func.count())
                                    .group_by(ToolCall.tool, ToolCall.status)).all()

        missions = GaugeMetricFamily("orchestrator_missions", "Missions by status.", labels=["status"])
        for status in MissionStatus.__args__:  # type: ignore[attr-defined]
            missions.add_metric([status], by_status.get(status, 0))
        yield missions

        yield _step_histogram(steps)

        handoff_family = CounterMetricFamily("orchestrator_handoffs", "Delegations taken.",
                                             labels=["from_agent", "to_agent", "reason"])
        for from_agent, to_agent, reason, count in handoffs:
            handoff_family.add_metric([from_agent, to_agent, reason], count)
        yield handoff_family

        yield GaugeMetricFamily("orchestrator_approvals_waiting", "Human gates waiting for a decision.",
                                value=waiting)

        tool_family = CounterMetricFamily("orchestrator_tool_calls", "Tool calls by tool and status.",
                                          labels=["tool", "status"])
        errors = CounterMetricFamily("orchestrator_tool_errors", "Tool calls that failed or were denied.",
                                     labels=["tool"])
        error_counts: dict[str, int] = {}
        for tool, status, count in calls:
            tool_family.add_metric([tool, status], count)
            if status != "ok":
                error_counts[tool] = error_counts.get(tool, 0) + count
        for tool, count in sorted(error_counts.items()):
            errors.add_metric([tool], count)
        yield tool_family
        yield errors


def _step_histogram(rows: list) -> HistogramMetricFamily:  # noqa: ANN001
    family = HistogramMetricFamily("orchestrator_step_duration_seconds", "Duration of finished procedure steps.",
                                   labels=["step"])
    by_step: dict[str, list[float]] = {}
    for name, started, finished in rows:
        if started.tzinfo is None or finished.tzinfo is None:
            started, finished = started.replace(tzinfo=None), finished.replace(tzinfo=None)
        by_step.setdefault(name, []).append(max(0.0, (finished - started).total_seconds()))
    for name, durations in sorted(by_step.items()):
        buckets = [(str(bound), float(sum(1 for d in durations if d <= bound))) for bound in _STEP_BUCKETS]
        buckets.append(("+Inf", float(len(durations))))
        family.add_metric([name], buckets, sum_value=sum(durations))
    return family


def metrics_registry(url: str) -> CollectorRegistry:
    """A registry of its own (not the process-global one), so each app instance reports its database."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(url))
    return registry
