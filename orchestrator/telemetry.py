"""OpenTelemetry traces of missions: mission -> step -> agent turn -> tool call, and delegations.

Off by default. With ``ORCH_OTEL_ENDPOINT`` set (``pip install 'ml-orchestrator[otel]'``) spans are exported
over OTLP/HTTP; :func:`install` hands a provider of one's own instead (tests use the SDK's in-memory
exporter). While off, every function here returns a shared no-op and ``opentelemetry`` is never imported,
so a mission pays one attribute check per span it would have made.

Every span carries ``orchestrator.mission.id``; steps, turns and tool calls their ``orchestrator.agent`` and
``orchestrator.step``; turns their tokens and cost, which add up on the delegation, step and mission spans
that contain them. Prompts and tool payloads are never put on a span.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ConfigError

__all__ = ["configure", "install", "uninstall", "enabled", "mission_span", "traced_node", "agent_turn",
           "record_tool_call", "instrument_app"]

log = logging.getLogger(__name__)

_PREFIX = "orchestrator."


class _Tracing:
    def __init__(self, provider: Any, *, owned: bool, endpoint: str | None) -> None:
        self.provider, self.owned, self.endpoint = provider, owned, endpoint
        self.tracer = provider.get_tracer("orchestrator")


_TRACING: _Tracing | None = None
_LOCK = threading.Lock()
_STEPS: dict[tuple[str, str], Any] = {}
"""(mission id, step) -> the span context of the step's latest run: a delegation's span is its child, although
the delegation runs as a node of its own once the step's node returned."""


def enabled() -> bool:
    return _TRACING is not None


def configure(settings: Settings) -> None:
    """Export spans over OTLP when ``settings.otel_endpoint`` is set (once per process); nothing otherwise."""
    global _TRACING
    endpoint = settings.otel_endpoint
    if not endpoint or (_TRACING is not None and (_TRACING.endpoint == endpoint or not _TRACING.owned)):
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError("ORCH_OTEL_ENDPOINT is set but OpenTelemetry is not installed: "
                          "pip install 'ml-orchestrator[otel]', or unset ORCH_OTEL_ENDPOINT") from None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint,
                                                                    headers={k: v.get_secret_value() for k, v in settings.otel_headers.items()} or None)))
    with _LOCK:
        previous, _TRACING = _TRACING, _Tracing(provider, owned=True, endpoint=endpoint)
    if previous is not None and previous.owned:
        previous.provider.shutdown()
    log.info("tracing: spans exported over OTLP to %s", endpoint)


def install(provider: Any) -> None:
    """Trace to this ``TracerProvider`` (an application's own, or a test's with an in-memory exporter)."""
    global _TRACING
    with _LOCK:
        _TRACING = _Tracing(provider, owned=False, endpoint=None)


def uninstall() -> None:
    """Stop tracing (a provider this module made is flushed and shut down)."""
    global _TRACING
    with _LOCK:
        previous, _TRACING = _TRACING, None
    if previous is not None and previous.owned:
        previous.provider.shutdown()


# -- spans ----------------------------------------------------------------------------------------------------


class _NoSpan:
    """What every function returns while tracing is off."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, **attributes: Any) -> None:
        return None

    def usage(self, usage: dict[str, Any] | None) -> None:
        return None

    def outcome(self, status: str) -> str:
        return status


_NO_SPAN = _NoSpan()
_OPEN: ContextVar[tuple[_Span, ...]] = ContextVar("orchestrator_spans", default=())
"""The spans open around the current code (LangGraph copies the context into the threads that run nodes)."""


class _Span:
    """A span, the mission facts its children inherit, and the tokens and cost counted inside it."""

    def __init__(self, name: str, attributes: dict[str, Any], *, prices: tuple[float, float] | None = None,
                 parent: Any = None) -> None:
        outer = _OPEN.get()
        self.parent = parent
        self.mission = attributes.get("mission.id") or (outer[-1].mission if outer else None)
        self.prices = prices if prices is not None else (outer[-1].prices if outer else None)
        if self.mission and "mission.id" not in attributes:
            attributes = {"mission.id": self.mission, **attributes}
        self.name, self.attributes = name, attributes
        self.input_tokens = self.output_tokens = 0
        self.cost = 0.0
        self.counted = False

    def __enter__(self) -> _Span:
        assert _TRACING is not None
        context = None
        if self.parent is not None:
            from opentelemetry.trace import NonRecordingSpan, set_span_in_context

            context = set_span_in_context(NonRecordingSpan(self.parent))
        self._cm = _TRACING.tracer.start_as_current_span(self.name, context=context, attributes=_attrs(self.attributes),
                                                         record_exception=False, set_status_on_exception=False)
        self.span = self._cm.__enter__()
        self._token = _OPEN.set((*_OPEN.get(), self))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        _OPEN.reset(self._token)
        if self.name == "mission":
            for key in [k for k in _STEPS if k[0] == self.mission]:
                _STEPS.pop(key, None)
        if self.counted:
            self.span.set_attributes(_attrs({"tokens.input": self.input_tokens, "tokens.output": self.output_tokens,
                                             **({"cost_usd": round(self.cost, 6)} if self.prices else {})}))
        if exc is not None:
            from langgraph.errors import GraphInterrupt

            if isinstance(exc, GraphInterrupt):  # waiting for a person is no error
                self.span.set_attribute(_PREFIX + "interrupted", True)
            else:
                from opentelemetry.trace import Status, StatusCode

                self.span.record_exception(exc)
                self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:300]))
        self._cm.__exit__(exc_type, exc, tb)

    def set(self, **attributes: Any) -> None:
        self.span.set_attributes(_attrs(attributes))

    def usage(self, usage: dict[str, Any] | None) -> None:
        """Count a model answer's tokens (and cost, with the settings' prices) here and on every open span."""
        tokens_in, tokens_out = int((usage or {}).get("input_tokens") or 0), int((usage or {}).get("output_tokens") or 0)
        cost = (tokens_in * self.prices[0] + tokens_out * self.prices[1]) / 1_000_000 if self.prices else 0.0
        for span in _OPEN.get():
            span.input_tokens += tokens_in
            span.output_tokens += tokens_out
            span.cost += cost
            span.counted = True

    def outcome(self, status: str) -> str:
        self.span.set_attribute(_PREFIX + "status", status)
        return status


def _attrs(attributes: dict[str, Any]) -> dict[str, Any]:
    return {_PREFIX + key: value for key, value in attributes.items() if value is not None}


def mission_span(run: Any) -> _Span | _NoSpan:
    """The span of one run of a mission (from its start or a gate to its end or next gate)."""
    if _TRACING is None:
        return _NO_SPAN
    s = run.settings
    prices = (s.price_input_per_mtok, s.price_output_per_mtok) if s.price_input_per_mtok is not None and \
        s.price_output_per_mtok is not None else None
    return _Span("mission", {"mission.id": run.mission_id, "agent": run.mission.agent,
                             "mission.objective": run.mission.objective[:200]}, prices=prices)


def traced_node(name: str, node: Callable[..., Any], *, kind: str) -> Callable[..., Any]:
    """``node`` in a span named for what it is: a step of the procedure, a delegation, or a gate."""

    @functools.wraps(node)
    def traced(state: Any, runtime: Any) -> Any:
        if _TRACING is None:
            return node(state, runtime)
        run = runtime.context
        if kind == "delegation":
            pending = state.get("pending") or {}
            span = _Span(f"delegation {pending.get('from_agent')} -> {name}",
                         {"mission.id": run.mission_id, "agent": name, "from_agent": pending.get("from_agent"),
                          "step": pending.get("step"), "reason": pending.get("reason")},
                         parent=_STEPS.get((run.mission_id, str(pending.get("step")))))
        else:
            opened = state.get("opened") or {}
            rounds = opened.get("round") if opened.get("step") == name else state.get("step_round")
            span = _Span(f"{kind} {name}", {"mission.id": run.mission_id, "step": name, "round": rounds,
                                            "agent": run.mission.agent if kind == "step" else None})
        with span:
            if kind == "step":
                _STEPS[(run.mission_id, name)] = span.span.get_span_context()
            return node(state, runtime)

    return traced


def agent_turn(*, agent: str, step: str, key: str) -> _Span | _NoSpan:
    """The span of one model answer (a turn replayed from the journal asks no model and makes none)."""
    if _TRACING is None:
        return _NO_SPAN
    return _Span("agent turn", {"agent": agent, "step": step, "turn": key})


def record_tool_call(*, tool: str, agent: str, step: str, status: str, decision: str, source: str | None,
                     duration_ms: float, call_id: str) -> None:
    """A span for a tool call that just ended (made after the fact: the call may have waited at a gate)."""
    if _TRACING is None:
        return
    span = _Span(f"tool {tool}", {"agent": agent, "step": step, "tool": tool, "tool.status": status,
                                  "tool.decision": decision, "tool.source": source, "tool.call_id": call_id,
                                  "duration_ms": duration_ms})
    end = time.time_ns()
    otel = _TRACING.tracer.start_span(span.name, attributes=_attrs(span.attributes),
                                      start_time=end - int(duration_ms * 1_000_000))
    if status != "ok":
        from opentelemetry.trace import Status, StatusCode

        otel.set_status(Status(StatusCode.ERROR, f"{tool}: {status}"))
    otel.end(end_time=end)


def instrument_app(app: Any) -> None:
    """Trace the API's requests too (FastAPI instrumentation), when tracing is on."""
    if _TRACING is None:
        return
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        log.warning("tracing is on but opentelemetry-instrumentation-fastapi is not installed: API requests are "
                    "not traced (pip install 'ml-orchestrator[otel]')")
        return
    FastAPIInstrumentor.instrument_app(app, tracer_provider=_TRACING.provider)
