"""The policy layer in action: every tool call goes through here, exactly once per call id.

Order of checks: journal (a replayed call returns its recorded result), allowlist of the calling agent,
production-data approval (an ``interrupt()`` bound to the exact call), then the tool itself. The result
is redacted before it reaches the model, the checkpoint, the journal or the audit trail.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.types import interrupt
from pydantic import ValidationError

from orchestrator.audit import append_event
from orchestrator.context import RunContext
from orchestrator.db import session_scope
from orchestrator.db.approvals import approve_now, request_approval
from orchestrator.db.direct import Writer, transaction
from orchestrator.db.models import Approval
from orchestrator.errors import ToolDenied, ToolError
from orchestrator.journal import Journal, save_tool_call
from orchestrator.recorder import DatabaseRecorder
from tools.context import Signal, ToolContext
from tools.policy import call_fingerprint, check_allowed, digest, production_targets
from tools.redaction import redact, redact_obj

__all__ = ["execute_tool_call", "CallOutcome", "gate"]

log = logging.getLogger(__name__)
_PREVIEW = 600


@dataclass
class CallOutcome:
    """The tool message for the model and the failure modes the call raised."""

    message: ToolMessage
    signals: list[Signal] = field(default_factory=list)


def gate(run: RunContext, *, key: str, kind: str, step: str, agent: str, question: str,
         payload: dict[str, Any] | Callable[[Writer], dict[str, Any]],
         journal: Journal | None = None) -> tuple[str, str, str | None]:
    """Ask a human (``interrupt()``) unless the run auto-approves; returns (decision, decided_by, comment).

    ``payload`` is what the person approves, or a function reading it in the gate's own transaction.
    The approval row is created once (keyed); on a replay the same row is found and, because the node
    calls ``interrupt()`` again in the same order, LangGraph hands back the recorded resume value.
    """
    with (journal.write() if journal is not None else transaction(run.database_url)) as tx:
        row = request_approval(tx, mission_id=run.mission_id, key=key, kind=kind, step=step, agent=agent,
                               question=question, payload=payload)
        if row.status == "pending" and run.auto_approve_by:
            row = approve_now(tx, mission_id=run.mission_id, gate=row, step=step, actor=run.auto_approve_by,
                              comment="approved automatically")
        approval_id, status, sha, by, comment = row.id, row.status, row.payload_sha256, row.decided_by, row.comment
        payload = row.payload
    if run.auto_approve_by:  # decided above, on the spot: nothing to wait for
        return status, by or "", comment
    interrupt({"approval_id": approval_id, "kind": kind, "question": question, "payload": payload,
               "payload_sha256": sha})
    with session_scope(run.database_url, readonly=True) as session:
        row = session.get(Approval, approval_id)
        assert row is not None
        status, by, comment = row.status, row.decided_by or "", row.comment
    if status == "pending":
        # Resumed without a decision on record: keep waiting rather than guess.
        raise ToolError(f"approval {approval_id} is still pending")
    return status, by, comment


def _tool_context(run: RunContext, *, agent: str, step: str, delegation_id: int | None) -> ToolContext:
    recorder = DatabaseRecorder(run.database_url, run.mission_id, agent=agent, step=step)
    return ToolContext(workspace=run.workspace, mission_id=run.mission_id, agent=agent, step=step,
                       settings=run.settings, recorder=recorder, delegation_id=delegation_id)


def _run_tool(tool: BaseTool, args: dict[str, Any], ctx: ToolContext) -> tuple[str, str]:
    try:
        output = tool.invoke({**args, "ctx": ctx})
    except ToolError as exc:
        return f"Error: {exc}", "error"
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return f"Error: invalid arguments for {tool.name}: {problems}", "error"
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return text, "ok"


def execute_tool_call(call: ToolCall, *, run: RunContext, agent: str, step: str, delegation_id: int | None,
                      allowed: dict[str, BaseTool], journal: Journal) -> CallOutcome:
    """Run one tool call under the policy layer, or return its recorded result when it already ran."""
    call_id, name = call["id"] or "", call["name"]
    args = {key: value for key, value in (call.get("args") or {}).items() if key != "ctx"}
    done = journal.calls.get(call_id)
    if done is not None:
        signals = [Signal(**s) for s in done.signals or []]
        return CallOutcome(ToolMessage(content=done.result, tool_call_id=call_id, name=name,
                                       status="error" if done.status != "ok" else "success"), signals)

    started = time.perf_counter()
    ctx = _tool_context(run, agent=agent, step=step, delegation_id=delegation_id)
    decision, status = "allowed", "ok"
    try:
        check_allowed(name, list(allowed))
        targets = production_targets(name, args, run.settings.production_patterns)
        if targets:
            verdict, by, comment = gate(
                run, journal=journal, key=f"tool:{call_fingerprint(name, args)}", kind="production_data", step=step, agent=agent,
                question=f"{agent} wants to call {name} on production data: {', '.join(targets)}",
                payload={"tool": name, "args": redact_obj(args), "targets": targets, "call_id": call_id})
            if verdict != "approved":
                reason = f" ({comment})" if comment else ""
                raise ToolDenied(f"{name} on {', '.join(targets)} was rejected by {by}{reason}; nothing was "
                                 "done. Continue without it, or provide a manual plan.")
            decision = "approved"
        result, status = _run_tool(allowed[name], args, ctx)
    except ToolDenied as exc:
        result, status, decision = f"Error: {exc}", "denied", "denied"
        ctx.signal("access_denied", str(exc), tool=name)
    result = redact(result)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    sandboxed = None
    if name in ("bash", "run_tests") and status == "ok":
        try:
            sandboxed = bool(json.loads(result).get("sandboxed", True))
        except (ValueError, AttributeError):
            sandboxed = None
    signals = list(ctx.signals)
    safe_args, args_sha256, result_sha256 = redact_obj(args), digest(args), digest(result)
    with journal.write() as session:
        save_tool_call(session, mission_id=run.mission_id, call_id=call_id, tool=name, agent=agent, step=step,
                       delegation_id=delegation_id, args_sha256=args_sha256, result=result,
                       result_sha256=result_sha256, status=status, decision=decision,
                       signals=[{"kind": s.kind, "detail": s.detail, "data": s.data} for s in signals],
                       sandboxed=sandboxed, duration_ms=duration_ms)
        append_event(session, mission_id=run.mission_id, kind="tool.called", actor=agent, step=step,
                     delegation_id=delegation_id,
                     payload={"tool": name, "call_id": call_id, "args": safe_args, "args_sha256": args_sha256,
                              "result_preview": result[:_PREVIEW], "result_sha256": result_sha256,
                              "status": status, "decision": decision, "duration_ms": duration_ms,
                              "sandboxed": sandboxed, "signals": [s.kind for s in signals]})
    log.info("tool %s by %s in %s: %s (%.0f ms)", name, agent, step, status, duration_ms)
    return CallOutcome(ToolMessage(content=result, tool_call_id=call_id, name=name,
                                   status="success" if status == "ok" else "error"), signals)
