"""Human gates: a decision recorded as an approval row bound to its payload, asked with ``interrupt()``.

Two gates belong to the procedure (``orchestrator.procedure``): ``review``, where a step that failed or was
blocked waits for a person (continue with the risk recorded, request changes, or end the mission), and
``release_gate``, where the release plan is approved, sent back or rejected. The production-data gate of a
single tool call uses :func:`ask_human` too (``orchestrator.executor``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agents.spec import LEAD_AGENT
from orchestrator.audit import append_event
from orchestrator.context import RunContext
from orchestrator.db import session_scope
from orchestrator.db.approvals import approve_now, request_approval
from orchestrator.db.artifacts import record_artifact
from orchestrator.db.direct import Writer, transaction
from orchestrator.db.missions import open_round, settle_step
from orchestrator.db.models import Approval
from orchestrator.errors import ToolError
from orchestrator.events import EventKind
from orchestrator.journal import Journal
from orchestrator.procedure import PROCEDURE
from orchestrator.state import MissionState, Review
from orchestrator.views import release_payload
from tools.workspace import resolve_in_workspace

__all__ = ["ask_human", "review", "release_gate", "write_manual_plan", "ended", "MANUAL_PLAN"]

MANUAL_PLAN = "reports/manual-plan.md"


def ask_human(run: RunContext, *, key: str, kind: str, step: str, agent: str, question: str,
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


def _question(req: Review) -> str:
    step = PROCEDURE.step(req["step"]).title
    if req["kind"] == "unusable_input":
        return (f"{step} is blocked: an input cannot be used ({req['reason']}). Fix it and start the mission "
                f"again (see {MANUAL_PLAN}), or continue with the risk recorded?")
    if req["kind"] == "escalation":
        return (f"Evaluation is still below the acceptance thresholds after {req['round']} rounds ({req['reason']}). "
                "Continue with the risk recorded?")
    return f"{step} {req['status']}: {req['reason']}. Continue with the risk recorded?"


def review(state: MissionState, runtime: Runtime[RunContext]) -> Command:
    """A step did not do its work: a human accepts the risk and goes on, asks for changes, or ends the mission."""
    run, req = runtime.context, state["review"]
    assert req is not None, "review entered without a step to review"
    step, rounds = req["step"], req["round"]
    decision, by, comment = ask_human(
        run, key=f"review:{step}:{rounds}", kind=req["kind"], step=step, agent=LEAD_AGENT, question=_question(req),
        payload={"step": step, "round": rounds, "status": req["status"], "reason": req["reason"],
                 "evidence": req["evidence"], "continue_to": req["next"],
                 "manual_plan": MANUAL_PLAN if req["kind"] == "unusable_input" else None})
    notes_seq = state.get("notes_seq") or 0
    with transaction(run.database_url) as tx:
        settle_step(tx, mission_id=run.mission_id, name=step, round_=rounds, actor=by, status=req["status"],  # type: ignore[arg-type]
                    reason=req["reason"])
        if decision == "approved":
            append_event(tx, mission_id=run.mission_id, kind=EventKind.RISK_ACCEPTED, actor=by, step=step,
                         payload={"detail": f"{step} {req['status']}: {req['reason']}", "comment": comment})
            risk = {"step": step, "status": req["status"], "reason": req["reason"], "accepted_by": by}
            update: dict[str, Any] = {"review": None, "signals": [], "risks": [*(state.get("risks") or []), risk]}
            if req["next"] == END:
                return Command(goto=END, update={**update, "outcome": ended(state, [risk])})
            if req["next"] in PROCEDURE.step_names:  # (a gate opens no round)
                update["opened"] = open_round(tx, mission_id=run.mission_id, step=req["next"], actor=LEAD_AGENT,
                                              notes_after=notes_seq)
            return Command(goto=req["next"], update=update)
        if decision == "changes_requested":
            return _again(tx, run, step, by, comment, notes_seq, extra={"review": None, "signals": []})
    reason = f"{step} {req['status']}: {req['reason']}; rejected at review by {by}" + (f": {comment}" if comment else "")
    return Command(goto=END, update={"review": None, "outcome": {"status": req["status"], "reason": reason}})


def release_gate(state: MissionState, runtime: Runtime[RunContext]) -> Command:
    """Ask a human to approve the release plan before anything is promoted."""
    run = runtime.context
    rounds = state.get("step_round") or 1
    decision, by, comment = ask_human(run, key=f"release:{rounds}" if rounds > 1 else "release", kind="release",
                                      step="release", agent=LEAD_AGENT,
                                      question=PROCEDURE.gate("release_gate").question,
                                      payload=lambda session: release_payload(session, run))
    notes_seq = state.get("notes_seq") or 0
    with transaction(run.database_url) as tx:
        settled = {"approved": "done", "changes_requested": "done"}.get(decision, "rejected")
        settle_step(tx, mission_id=run.mission_id, name="release", round_=rounds, actor=by, status=settled,  # type: ignore[arg-type]
                    reason=None if decision == "approved" else f"{decision.replace('_', ' ')} by {by}"
                    + (f": {comment}" if comment else ""))
        if decision == "approved":
            opened = open_round(tx, mission_id=run.mission_id, step="report", actor=LEAD_AGENT, notes_after=notes_seq)
            return Command(goto="report", update={"opened": opened})
        if decision == "changes_requested":
            return _again(tx, run, "release", by, comment, notes_seq, extra={})
    reason = f"release rejected by {by}" + (f": {comment}" if comment else "")
    return Command(goto=END, update={"outcome": {"status": "rejected", "reason": reason}})


def _again(tx: Writer, run: RunContext, step: str, by: str, comment: str | None, notes_seq: int,
           *, extra: dict[str, Any]) -> Command:
    """Run ``step`` again, the reviewer's comment given to the lead as a user message of the mission."""
    append_event(tx, mission_id=run.mission_id, kind=EventKind.USER_MESSAGE, actor=by, step=step,
                 payload={"text": f"Changes requested at review: {comment or '(no comment)'}"})
    opened = open_round(tx, mission_id=run.mission_id, step=step, actor=LEAD_AGENT, notes_after=notes_seq)
    return Command(goto=step, update={**extra, "opened": opened})


def ended(state: MissionState, more: list[Any] | None = None) -> dict[str, str]:
    """The outcome of a mission that ran to the end: completed, or with the risks a human accepted."""
    risks = [*(state.get("risks") or []), *(more or [])]
    if not risks:
        return {"status": "completed", "reason": ""}
    # Steps that failed for the same reason (an input every later step needed) are said once.
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for risk in risks:
        grouped.setdefault((risk["status"], risk["reason"][:200], risk["accepted_by"]), []).append(risk["step"])
    listed = "; ".join(f"{', '.join(steps)} {status} ({why}), accepted by {by}"
                       for (status, why, by), steps in grouped.items())
    return {"status": "completed_with_risks", "reason": listed}



def write_manual_plan(session: Any, run: RunContext, req: Review) -> str:
    """Write the manual plan for inputs that cannot be used (what to fix, how to rerun) and record it."""
    lines = [f"# Manual plan: {PROCEDURE.step(req['step']).title} could not use its inputs", "",
             f"Mission `{run.mission_id}`: {run.mission.objective}", "", "## What is wrong", ""]
    fixes = []
    for item in req["evidence"]:
        data = item.get("data") or {}
        where = f"`{data['path']}`: " if data.get("path") else ""
        lines.append(f"- {where}{item.get('detail', '')}" + (f" (tool `{data['tool']}`)" if data.get("tool") else ""))
        if data.get("fix"):
            fixes.append(f"- {where}{data['fix']}")
    lines += ["", "## What to fix", "", *(fixes or ["- Make the files above readable and consistent with the model."]),
              "", "## How to rerun", "",
              f"1. Fix the files above in the workspace `{run.workspace}` (nothing there was changed by the mission).",
              f"2. Start the mission again: `orchestrator run --workspace {run.workspace} --mission-file mission.md`.",
              f"3. Or decide this mission's review: `orchestrator approve {run.mission_id}` continues with the risk "
              f"recorded, `orchestrator approve {run.mission_id} --reject` ends it as blocked.", ""]
    text = "\n".join(lines)
    data = text.encode("utf-8")
    target = resolve_in_workspace(run.workspace, MANUAL_PLAN, for_write=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    record_artifact(session, mission_id=run.mission_id, path=MANUAL_PLAN, sha256=hashlib.sha256(data).hexdigest(),
                    size=len(data), kind="doc", agent=LEAD_AGENT, step=req["step"])
    return MANUAL_PLAN
