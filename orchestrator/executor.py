"""The policy layer in action: every tool call goes through here, exactly once per call id.

Order of checks: journal (a replayed call returns its recorded result; one its process died in is retried
with the same key or reported), allowlist of the calling agent, production-data approval (an ``interrupt()``
bound to the exact call), the record that it started, then the tool itself. The result
is redacted before it reaches the model, the checkpoint, the journal or the audit trail.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from orchestrator.audit import append_event
from orchestrator.context import RunContext
from orchestrator.errors import INTERRUPTED_MARK, ToolDenied, ToolError, UnusableInput
from orchestrator.events import EventKind
from orchestrator.gates import ask_human
from orchestrator.journal import INTERRUPTED, STARTED, Journal, save_tool_call, start_tool_call
from orchestrator.mcp_tools import tool_source
from orchestrator.recorder import DatabaseRecorder
from orchestrator.telemetry import record_tool_call
from tools.context import Signal, ToolContext
from tools.policy import call_fingerprint, check_allowed, digest, production_targets, replay_policy
from tools.redaction import redact, redact_obj

__all__ = ["execute_tool_call", "CallOutcome"]

log = logging.getLogger(__name__)
_PREVIEW = 600


@dataclass
class CallOutcome:
    """The tool message for the model and the failure modes the call raised."""

    message: ToolMessage
    signals: list[Signal] = field(default_factory=list)


def _tool_context(run: RunContext, *, agent: str, step: str, delegation_id: int | None, call_id: str,
                  attempt: int) -> ToolContext:
    recorder = DatabaseRecorder(run.database_url, run.mission_id, agent=agent, step=step, call_id=call_id)
    return ToolContext(workspace=run.workspace, mission_id=run.mission_id, agent=agent, step=step,
                       settings=run.settings, recorder=recorder, delegation_id=delegation_id, mission=run.mission,
                       call_id=call_id, attempt=attempt)


def _run_tool(tool: BaseTool, args: dict[str, Any], ctx: ToolContext) -> tuple[str, str]:
    """(result text, status): a tool returns its result or raises; every failure is an ``error`` result."""
    try:
        output = tool.invoke({**args, "ctx": ctx})
    except UnusableInput as exc:
        # A prerequisite cannot be used: the step stops at the review gate with this evidence.
        ctx.signal("unusable_input", str(exc), path=exc.path, fix=exc.fix, tool=tool.name)
        return f"Error: {exc}" + (f" To fix: {exc.fix}" if exc.fix else ""), "error"
    except ToolDenied:
        raise
    except ToolError as exc:
        return f"Error: {exc}", "error"
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return f"Error: invalid arguments for {tool.name}: {problems}", "error"
    except Exception as exc:  # a bug or an unforeseen input in the tool: the run goes on, the log has the trace
        log.debug("tool %s raised", tool.name, exc_info=True)
        log.warning("tool %s failed unexpectedly: %s: %s", tool.name, type(exc).__name__, exc)
        return (f"Error: {tool.name} failed unexpectedly ({type(exc).__name__}: {str(exc)[:300]}). Its inputs may "
                "not fit what it supports: check them, continue without it, or report the problem."), "error"
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return text, _status_of(text)


_FAILED = ("error", "failed")


def _status_of(text: str) -> str:
    """A result that says it failed (``{"status": "error" | "failed", ...}``: a command that exited non-zero,
    tests that failed, a check that did not pass) is recorded as an error, whatever the tool."""
    if not text.startswith("{") or '"status"' not in text:
        return "ok"
    try:
        status = json.loads(text).get("status")
    except ValueError:
        return "ok"
    return "error" if status in _FAILED else "ok"


def execute_tool_call(call: ToolCall, *, run: RunContext, agent: str, step: str, delegation_id: int | None,
                      allowed: dict[str, BaseTool], journal: Journal) -> CallOutcome:
    """Run one tool call under the policy layer, or return its recorded result when it already ran.

    A call that can change things is recorded as started before it runs. Found started on resume (its process
    died while it ran), it is run again with the same idempotency key when its effects are keyed by it, and
    otherwise reported to the agent as interrupted, never silently run twice (``tools.policy.Replay``).
    """
    call_id, name = call["id"] or "", call["name"]
    args = {key: value for key, value in (call.get("args") or {}).items() if key != "ctx"}
    source = tool_source(allowed.get(name))
    replay = replay_policy(name, builtin=not (source or "").startswith("mcp:"))
    attempt = 1
    done = journal.calls.get(call_id)
    if done is not None and done.status != STARTED:
        signals = [Signal(**s) for s in done.signals or []]
        return CallOutcome(ToolMessage(content=done.result, tool_call_id=call_id, name=name,
                                       status="error" if done.status != "ok" else "success"), signals)
    if done is not None:
        if replay == "report":
            return _report_interrupted(call_id, name, args, run=run, agent=agent, step=step,
                                       delegation_id=delegation_id, journal=journal, source=source)
        attempt = done.attempts + 1

    started = time.perf_counter()
    ctx = _tool_context(run, agent=agent, step=step, delegation_id=delegation_id, call_id=call_id, attempt=attempt)
    decision, status, recorded_start = "allowed", "ok", False
    try:
        check_allowed(name, list(allowed))
        targets = production_targets(name, args, run.settings.production_patterns)
        if targets:
            verdict, by, comment = ask_human(
                # Keyed by the call: the same call replayed finds its decision, a step's next round asks again.
                run, journal=journal, key=f"tool:{call_id}:{call_fingerprint(name, args)}", kind="production_data",
                step=step, agent=agent,
                question=f"{agent} wants to call {name} on production data: {', '.join(targets)}",
                payload={"tool": name, "args": redact_obj(args), "targets": targets, "call_id": call_id})
            if verdict != "approved":
                reason = f" ({comment})" if comment else ""
                raise ToolDenied(f"{name} on {', '.join(targets)} was rejected by {by}{reason}; nothing was "
                                 "done. Continue without it, or provide a manual plan.")
            decision = "approved"
        if replay != "free":
            with journal.write() as tx:
                start_tool_call(tx, mission_id=run.mission_id, call_id=call_id, tool=name, agent=agent, step=step,
                                delegation_id=delegation_id, args_sha256=digest(args), attempt=attempt)
            recorded_start = True
        result, status = _run_tool(allowed[name], args, ctx)
    except ToolDenied as exc:
        result, status, decision = f"Error: {exc}", "denied", "denied"
        ctx.signal("access_denied", str(exc), tool=name)
    result = redact(result)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    sandboxed = None
    if name in ("bash", "run_tests") and decision != "denied":
        try:
            sandboxed = bool(json.loads(result).get("sandboxed", True))
        except (ValueError, AttributeError):
            sandboxed = None
    signals = list(ctx.signals)
    _record(run, journal, call_id=call_id, name=name, args=args, agent=agent, step=step,
            delegation_id=delegation_id, result=result, status=status, decision=decision, signals=signals,
            sandboxed=sandboxed, duration_ms=duration_ms, source=source, started=recorded_start, attempt=attempt)
    return CallOutcome(ToolMessage(content=result, tool_call_id=call_id, name=name,
                                   status="success" if status == "ok" else "error"), signals)


def _report_interrupted(call_id: str, name: str, args: dict[str, Any], *, run: RunContext, agent: str, step: str,
                        delegation_id: int | None, journal: Journal, source: str | None) -> CallOutcome:
    """A call whose effects are not keyed was running when its process died: it is not run again; the agent is
    told, with the record, and decides (run it again as a new call, check its effects, or go on without)."""
    result = (f"Error: {INTERRUPTED_MARK} this {name} call was running when the worker process died, and its "
              "result was never recorded. It is not run again automatically, since it may already have had its "
              "effects (files written, commands run). Check its effects, then call it again if it is still needed.")
    _record(run, journal, call_id=call_id, name=name, args=args, agent=agent, step=step, delegation_id=delegation_id,
            result=result, status=INTERRUPTED, decision="allowed", signals=[], sandboxed=None, duration_ms=0.0,
            source=source, started=True, attempt=journal.calls[call_id].attempts)
    return CallOutcome(ToolMessage(content=result, tool_call_id=call_id, name=name, status="error"), [])


def _record(run: RunContext, journal: Journal, *, call_id: str, name: str, args: dict[str, Any], agent: str,
            step: str, delegation_id: int | None, result: str, status: str, decision: str, signals: list[Signal],
            sandboxed: bool | None, duration_ms: float, source: str | None, started: bool, attempt: int) -> None:
    """The call's record and its ``tool.called`` event, in one transaction."""
    safe_args, args_sha256, result_sha256 = redact_obj(args), digest(args), digest(result)
    with journal.write() as session:
        save_tool_call(session, mission_id=run.mission_id, call_id=call_id, tool=name, agent=agent, step=step,
                       delegation_id=delegation_id, args_sha256=args_sha256, result=result,
                       result_sha256=result_sha256, status=status, decision=decision,
                       signals=[{"kind": s.kind, "detail": s.detail, "data": s.data} for s in signals],
                       sandboxed=sandboxed, duration_ms=duration_ms, started=started, attempt=attempt)
        payload = {"tool": name, "call_id": call_id, "args": safe_args, "args_sha256": args_sha256,
                   "result_preview": result[:_PREVIEW], "result_sha256": result_sha256, "status": status,
                   "decision": decision, "duration_ms": duration_ms, "sandboxed": sandboxed,
                   "signals": [s.kind for s in signals], "source": source}
        if attempt > 1:
            payload["attempt"] = attempt  # run again after its process died: its keyed effects were made once
        append_event(session, mission_id=run.mission_id, kind=EventKind.TOOL_CALLED, actor=agent, step=step,
                     delegation_id=delegation_id, payload=payload)
    record_tool_call(tool=name, agent=agent, step=step, status=status, decision=decision, call_id=call_id,
                     source=source, duration_ms=duration_ms)  # a span when tracing is on
    log.info("tool %s by %s in %s: %s (%.0f ms)", name, agent, step, status, duration_ms)
