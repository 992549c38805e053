"""OpenTelemetry traces of a mission, read with the SDK's in-memory exporter: mission -> step -> agent turn ->
tool call, delegations under the step that made them, tokens and cost; OTLP export when configured; no spans
and no exporter import while tracing is off."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")

from fastapi.testclient import TestClient  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from orchestrator import telemetry  # noqa: E402
from orchestrator.config import Settings  # noqa: E402
from orchestrator.runner import Runner  # noqa: E402
from tests.support.fake_chat import Scripts  # noqa: E402
from tests.support.missions import MISSION_TEXT, full_path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.install(provider)
    yield exporter
    telemetry.uninstall()


def _attrs(span: ReadableSpan) -> dict:
    return {k.removeprefix("orchestrator."): v for k, v in (span.attributes or {}).items()}


def test_a_mission_is_traced_mission_step_turn_tool_and_delegation(tmp_path: Path, sqlite_url: str, workspace: Path,
                                                                   spans: InMemorySpanExporter) -> None:
    settings = Settings(home=tmp_path / "home", database_url=sqlite_url, _env_file=None,
                        price_input_per_mtok=3.0, price_output_per_mtok=15.0)
    with Runner(settings, model_factory=Scripts(full_path()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
        assert runner.run(mission_id) == "completed"
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}

    def parent(span: ReadableSpan) -> ReadableSpan | None:
        return by_id.get(span.parent.span_id) if span.parent else None

    [mission] = [s for s in finished if s.name == "mission"]
    assert _attrs(mission)["mission.id"] == mission_id and _attrs(mission)["status"] == "completed"
    assert all(_attrs(s)["mission.id"] == mission_id for s in finished)
    steps = {s.name.removeprefix("step "): s for s in finished if s.name.startswith("step ")}
    assert set(steps) == {"align", "design", "implement", "evaluate", "package", "release", "report"}
    assert all(parent(s) is mission for s in steps.values())
    assert _attrs(steps["evaluate"])["step"] == "evaluate" and _attrs(steps["evaluate"])["round"] == 1
    assert _attrs(steps["align"])["agent"] == "ml-engineer"

    turns = [s for s in finished if s.name == "agent turn"]
    assert turns and all(parent(t) is not None for t in turns)
    [priced] = [t for t in turns if _attrs(t).get("tokens.input") == 120]
    assert parent(priced) is steps["align"] and _attrs(priced)["agent"] == "ml-engineer"
    assert _attrs(priced)["tokens.output"] == 30 and _attrs(priced)["cost_usd"] == pytest.approx(0.00081)
    # Tokens add up on the step and the mission that contain the turn.
    assert _attrs(steps["align"])["tokens.input"] == 120 and _attrs(mission)["tokens.input"] == 120

    [write] = [s for s in finished if s.name == "tool write_file"]
    assert parent(write) is steps["implement"]
    assert _attrs(write)["tool.status"] == "ok" and _attrs(write)["step"] == "implement"
    assert _attrs(write)["tool.source"] == "builtin" and write.end_time - write.start_time > 0

    delegations = {s.name: s for s in finished if s.name.startswith("delegation ")}
    assert set(delegations) == {f"delegation ml-engineer -> {a}" for a in
                                ("data-scientist", "backend-developer", "security-expert", "devops-engineer")}
    scientist = delegations["delegation ml-engineer -> data-scientist"]
    # Align runs as two node executions (to the handoff, then on with its result): the first made the handoff.
    first_align = min((s for s in finished if s.name == "step align"), key=lambda s: s.start_time)
    assert parent(scientist) is first_align and _attrs(scientist)["reason"] == "planned"
    # The sub-agent's turns and tool calls are inside its delegation.
    [listing] = [s for s in finished if s.name == "tool list_files"]
    assert parent(listing) is scientist and _attrs(listing)["agent"] == "data-scientist"
    assert any(parent(t) is scientist and _attrs(t)["agent"] == "data-scientist" for t in turns)
    assert [s.name for s in finished if s.name.startswith("gate ")] == ["gate release_gate"]


def test_a_gate_waiting_for_a_person_is_no_error(tmp_path: Path, sqlite_url: str, workspace: Path,
                                                 spans: InMemorySpanExporter) -> None:
    settings = Settings(home=tmp_path / "home", database_url=sqlite_url, _env_file=None)
    with Runner(settings, model_factory=Scripts(full_path()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
        assert runner.run(mission_id) == "waiting_approval"
    [gate] = [s for s in spans.get_finished_spans() if s.name == "gate release_gate"]
    assert _attrs(gate)["interrupted"] is True and gate.status.is_ok
    [mission] = [s for s in spans.get_finished_spans() if s.name == "mission"]
    assert _attrs(mission)["status"] == "waiting_approval"


def test_the_api_requests_are_traced_when_tracing_is_on(tmp_path: Path, sqlite_url: str,
                                                        spans: InMemorySpanExporter) -> None:
    from orchestrator.api.app import create_app

    settings = Settings(home=tmp_path / "home", database_url=sqlite_url, _env_file=None)
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert client.get("/healthz").status_code == 200
    server = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert any("/healthz" in s.name for s in server)


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_spans_are_exported_over_otlp_when_an_endpoint_is_configured(tmp_path: Path, sqlite_url: str,
                                                                      workspace: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(home=tmp_path / "home", database_url=sqlite_url, _env_file=None,
                        otel_endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces",
                        otel_headers={"x-collector-key": "k-123"})
    try:
        with Runner(settings, model_factory=Scripts(full_path()).factory) as runner:
            assert telemetry.enabled()
            mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="ops")
            assert runner.run(mission_id) == "completed"
        telemetry.uninstall()  # flushes the batch
    finally:
        telemetry.uninstall()
        server.shutdown()
    assert _Collector.received and all(path == "/v1/traces" for path, _, _ in _Collector.received)
    names = set()
    for _, content_type, body in _Collector.received:
        assert content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
            assert service == "ml-orchestrator"
            names |= {span.name for scope in resource.scope_spans for span in scope.spans}
    assert {"mission", "step align", "agent turn", "tool write_file"} <= names


def test_tracing_off_makes_no_span_and_loads_no_exporter(tmp_path: Path) -> None:
    # A process of its own: another test may have imported the SDK's exporters in this one.
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # even a global provider gets nothing from us while we are off
        from orchestrator import telemetry
        from orchestrator.config import Settings
        from orchestrator.db.schema import upgrade
        from orchestrator.runner import Runner
        from tests.support.fake_chat import Scripts
        from tests.support.missions import MISSION_TEXT, full_path
        url = "sqlite:///{tmp_path / 'off.db'}"
        upgrade(url)
        ws = Path("{tmp_path}") / "ws"
        ws.mkdir()
        with Runner(Settings(home=Path("{tmp_path}"), database_url=url, _env_file=None),
                    model_factory=Scripts(full_path()).factory) as runner:
            assert runner.run(runner.submit(MISSION_TEXT, workspace=ws, auto_approve_by="ops")) == "completed"
        assert not telemetry.enabled()
        assert telemetry.agent_turn(agent="a", step="s", key="k") is telemetry.mission_span(None)
        assert exporter.get_finished_spans() == (), exporter.get_finished_spans()
        loaded = [m for m in sys.modules if m.startswith(("opentelemetry.exporter", "opentelemetry.instrumentation"))]
        assert not loaded, loaded
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
