"""The procedure graph, built from its declaration (``orchestrator.procedure``): the lead's steps, the
sub-agents as handoff targets, the failure-mode edges and the human gates (``orchestrator.gates``).

Each node may go exactly where the declaration says (``add_node(destinations=...)``), so the drawn graph
shows the procedure's real edges. A step's status is what the lead concluded (``finish_step``) and what the
tools reported (an unusable input blocks it), never where the graph goes next.

``build_graph`` returns an uncompiled ``StateGraph``; the caller compiles it with its checkpointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from agents.spec import LEAD_AGENT, SUB_AGENTS, AgentSpec
from orchestrator.agent_loop import LoopResult, run_agent
from orchestrator.briefs import Brief, HandoffResult
from orchestrator.context import RunContext
from orchestrator.db import session_scope
from orchestrator.db.delegations import (
    close_delegation,
    count_delegations,
    find_open_delegation,
    open_delegation,
)
from orchestrator.db.direct import Writer, transaction
from orchestrator.db.missions import finish_step, open_round
from orchestrator.errors import LimitExceeded
from orchestrator.gates import ended, release_gate, review, write_manual_plan
from orchestrator.handoff import HANDOFF_PREFIX, validate_edges
from orchestrator.journal import Journal
from orchestrator.procedure import AFTER_DETOUR, PROCEDURE, STEPS, FailureEdge
from orchestrator.prompts import RunFacts, brief_message, step_message, system_prompt
from orchestrator.state import INITIAL_STATE, MissionState, OpenedStep, PendingHandoff, Review
from orchestrator.telemetry import traced_node

__all__ = ["build_graph", "first_input"]

_BLOCKING = ("high", "critical")


def _signals_of(state: MissionState) -> list[dict[str, Any]]:
    return list(state.get("signals") or [])


def _open(session: Writer, mission_id: str, step: str, *, notes_after: int) -> OpenedStep:
    return open_round(session, mission_id=mission_id, step=step, actor=LEAD_AGENT,  # type: ignore[return-value]
                      notes_after=notes_after)


def first_input(session: Writer, *, mission_id: str) -> dict[str, Any]:
    """The graph's input for a mission that never ran: the initial state, its first step opened in the
    caller's transaction (the one that marks the mission running)."""
    return {**INITIAL_STATE, "opened": _open(session, mission_id, STEPS[0], notes_after=0)}


def _open_step(run: RunContext, step: str, state: MissionState, *,
               starting: bool) -> tuple[int, list[str], int, Journal]:
    """The step's round (opened by the node before, see ``open_round``), the user messages not yet seen,
    and the journal of this round; returns (round, notes, last note seq, journal)."""
    after = state.get("notes_seq") or 0
    opened = state.get("opened")
    if starting and opened is not None and opened["step"] == step:
        rounds, notes, seen = opened["round"], opened["notes"], opened["notes_seq"]
    elif not starting and state.get("step_round"):
        rounds, notes, seen = state["step_round"], [], after
    else:  # nothing opened it: a run resumed from its initial state, or from a checkpoint older than `opened`
        with transaction(run.database_url) as tx:
            own = _open(tx, run.mission_id, step, notes_after=after)
        rounds, notes, seen = own["round"], (own["notes"] if starting else []), own["notes_seq"]
    if run.fresh:  # no node of a fresh run executes twice: nothing of this round can be on record yet
        return rounds, notes, seen, Journal(run.database_url, run.mission_id)
    journal = Journal.load(run.database_url, run.mission_id, agent=LEAD_AGENT, scope=_scope(step, rounds))
    return rounds, notes, seen, journal


def _changed(state: MissionState, update: dict[str, Any]) -> dict[str, Any]:
    """The update without the fields it would set to the value they have: each written field is a channel
    write, versioned and saved in the next checkpoint."""
    return {key: value for key, value in update.items()
            if key == "messages" or key not in state or state[key] != value}  # type: ignore[literal-required]


def _scope(step: str, rounds: int) -> str:
    return f"{step}.r{rounds}"


def _verdict(result: LoopResult, signals: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(status, reason, summary) of a step from what the lead concluded and what the tools reported."""
    concluded = result.concluded
    if concluded is not None:
        status, reason, summary = concluded.status, concluded.reason, concluded.summary
    else:  # an answer without finish_step: the lead says it is done
        final = result.final
        status, reason = "done", ""
        summary = final.content if final is not None and isinstance(final.content, str) else ""
    unusable = [s for s in signals if s["kind"] == "unusable_input"]
    if unusable:
        status, reason = "blocked", "; ".join(s["detail"] for s in unusable)[:2000]
    if status != "done" and not reason:
        reason = summary[:500] or f"the lead reported the step {status}"
    return status, reason, summary


def _route(step: str, status: str, reason: str, signals: list[dict[str, Any]], state: MissionState,
           run: RunContext, rounds: int) -> tuple[str, str, str | None, dict[str, Any]]:
    """Where a finished step goes, with the status (and reason) it ends with: the failure-mode edges of the
    declaration first, then a review of a step that did not do its work, then the step's next node."""
    kinds = {signal["kind"] for signal in signals}
    detail = "; ".join(signal["detail"] for signal in signals)[:2000]
    decl = PROCEDURE.step(step)
    nxt = (state.get("after") or STEPS[-1]) if decl.next == AFTER_DETOUR else decl.next
    extra: dict[str, Any] = {"after": None} if decl.next == AFTER_DETOUR else {}

    def to_review(kind: str, status_: str, why: str) -> tuple[str, str, str | None, dict[str, Any]]:
        evidence = [s for s in signals if s["kind"] == "unusable_input"] or [
            {"kind": kind, "detail": why, "data": {}}]
        req: Review = {"step": step, "round": rounds, "status": status_, "kind": kind, "reason": why,
                       "evidence": evidence, "next": nxt}
        return "review", "waiting", why, {**extra, "review": req}

    def applies(signal: str) -> FailureEdge | None:
        edge = PROCEDURE.edge(signal)
        return edge if signal in kinds and (not edge.steps or step in edge.steps) else None

    if applies("unusable_input"):
        return to_review("unusable_input", "blocked", reason)
    if edge := applies("underperforms"):
        if (state.get("eval_rounds") or 0) + 1 < _limit(run, edge):
            brief = Brief(task="Evaluation is below the agreed acceptance thresholds: diagnose the cause and retrain "
                               "or adjust features; report the candidate's measured figures.",
                          context=detail, expected_output="Diagnosis, candidate model path and its metrics.")
            return edge.to, "failed", detail, _detour(edge.to, step, edge.signal, brief, return_to=step)
        return to_review("escalation", "failed", detail or "evaluation below the acceptance thresholds")
    if edge := applies("compliance"):
        why = detail or "security finding"
        if rounds < _limit(run, edge):
            return step, "blocked", why, {"blocked": why}
        return END, "blocked", why, {"blocked": why, "outcome": {
            "status": "blocked", "reason": f"release blocked by the security review after {rounds} rounds: {why}"}}
    if step == "package":
        extra["blocked"] = None
    if status != "done":
        return to_review(status, status, reason)
    if edge := applies("infrastructure"):
        brief = Brief(task="The resource estimate does not fit the mission's constraint: propose the scaling "
                           "(workers, node size, sharding) that makes it fit, with its cost.",
                      context=detail, expected_output="A sizing that fits, with margin and cost.")
        return edge.to, "done", None, {**extra, **_detour(edge.to, step, edge.signal, brief, return_to=nxt)}
    if (edge := applies("access_denied")) and edge.to not in (state.get("detours_done") or []):  # once
        return edge.to, "done", None, {"after": nxt, "detours_done": [*(state.get("detours_done") or []), edge.to]}
    if nxt == "release_gate":
        return nxt, "waiting", "waiting for the release approval", extra
    if nxt == END:
        return END, "done", None, {**extra, "outcome": ended(state)}
    return nxt, "done", None, extra


def _limit(run: RunContext, edge: FailureEdge) -> int:
    """How often ``edge`` may be taken: the setting its declaration names."""
    return int(getattr(run.settings, edge.limit or ""))


def _detour(to: str, step: str, reason: str, brief: Brief, *, return_to: str) -> dict[str, Any]:
    pending: PendingHandoff = {"to": to, "from_agent": LEAD_AGENT, "step": step, "reason": reason,
                               "brief": brief.model_dump(), "tool_call_id": None, "return_to": return_to}
    return {"pending": pending}


def _make_step_node(step: str):  # noqa: ANN202
    decl = PROCEDURE.step(step)

    def step_node(state: MissionState, runtime: Runtime[RunContext]) -> Command:
        run = runtime.context
        lead = run.agents[decl.lead]
        starting = not (state.get("step") == step and state.get("step_open"))
        rounds, notes, seen, journal = _open_step(run, step, state, starting=starting)
        new_messages: list[Any] = []
        update: dict[str, Any] = {"step": step, "step_open": True, "step_round": rounds, "opened": None}
        signals = [] if starting else _signals_of(state)
        if starting:
            note = "\n".join(f"User message: {text}" for text in notes)
            if step == "package" and state.get("blocked"):
                note += (f"\nRelease is blocked by Security: {state['blocked']}. Resolve the findings, then hand "
                         "off to security-expert again for a re-review.")
            new_messages.append(step_message(lead, step, decl.item, round_=rounds, note=note.strip()))
            update["notes_seq"] = seen
        facts = RunFacts(agent=lead.name, step=step, round=rounds, reason="planned", scope=_scope(step, rounds),
                         workspace=str(run.workspace))
        peers = [run.agents[name] for name in decl.handoffs]
        result = run_agent(run=run, agent=lead, system=system_prompt(lead, run.mission, facts, peers=peers),
                           history=[*state["messages"], *new_messages], step=step, scope=facts.scope, peers=peers,
                           journal=journal)
        update["messages"] = [*new_messages, *result.messages]
        signals += [{"kind": s.kind, "detail": s.detail, "data": s.data} for s in result.signals]
        update["signals"] = signals
        if result.handoff is not None:
            target, brief, call_id = result.handoff
            update["pending"] = {"to": target, "from_agent": lead.name, "step": step, "reason": "planned",
                                 "brief": brief.model_dump(), "tool_call_id": call_id, "return_to": step}
            result.journal.flush()
            return Command(goto=target, update=_changed(state, update))
        status, reason, summary = _verdict(result, signals)
        goto, recorded, why, extra = _route(step, status, reason, signals, state, run, rounds)
        req = extra.get("review")
        # The manual plan is written (and recorded) with the step's end, once: a replay finds the step finished.
        with (result.journal.write_session() if req and req["kind"] == "unusable_input"
              else result.journal.write()) as session:
            # Idempotent on a replay: only the round still running is finished, and the next step's open round
            # is reused. The next step starts as this one ends: one transaction, one moment.
            first = finish_step(session, mission_id=run.mission_id, name=step, round_=rounds, actor=lead.name,
                                status=recorded, summary=summary, reason=why)  # type: ignore[arg-type]
            if first and req and req["kind"] == "unusable_input":
                write_manual_plan(session, run, req)
            if goto in PROCEDURE.step_names:
                update["opened"] = _open(session, run.mission_id, goto,
                                         notes_after=update.get("notes_seq", state.get("notes_seq") or 0))
        update.update(extra, step_open=False)
        if step == "evaluate":
            update["eval_rounds"] = (state.get("eval_rounds") or 0) + 1
        return Command(goto=goto, update=_changed(state, update))

    step_node.__name__ = f"step_{step}"
    return step_node


def _make_subagent_node(name: str):  # noqa: ANN202
    def subagent_node(state: MissionState, runtime: Runtime[RunContext]) -> Command:
        run = runtime.context
        pending = state.get("pending")
        if not pending or pending["to"] != name:
            raise RuntimeError(f"{name} node entered without a handoff addressed to it")
        agent, source = run.agents[name], run.agents[pending["from_agent"]]
        step, reason = pending["step"], pending["reason"]
        key = pending["tool_call_id"] or f"edge:{step}:{reason}:{len(state['messages'])}"
        with session_scope(run.database_url) as session:
            row = find_open_delegation(session, mission_id=run.mission_id, tool_call_id=key)
            if row is None:
                _check_guards(session, run, source.name, name, step)
                row = open_delegation(session, mission_id=run.mission_id, from_agent=source.name, to_agent=name,
                                      step=step, reason=reason, brief=pending["brief"], tool_call_id=key,
                                      from_sha256=source.sha256, to_sha256=agent.sha256,
                                      checkpoint_id=get_config().get("configurable", {}).get("checkpoint_id"))
            delegation_id = row.id
            ordinal = count_delegations(session, mission_id=run.mission_id, to_agent=name, step=step)
        brief = Brief(**pending["brief"])
        facts = RunFacts(agent=name, step=step, round=ordinal, reason=reason, scope=f"dlg{delegation_id}",
                         workspace=str(run.workspace))
        result = run_agent(run=run, agent=agent, system=system_prompt(agent, run.mission, facts, peers=[]),
                           history=[brief_message(brief, from_agent=source, step=step, reason=reason)], step=step,
                           scope=facts.scope, delegation_id=delegation_id, is_sub=True,
                           journal=Journal(run.database_url, run.mission_id) if run.fresh else None)
        typed = result.submitted or HandoffResult(
            summary=(result.final.content if result.final and isinstance(result.final.content, str) else "")
            or "(the agent returned no summary)")
        tokens = (result.input_tokens or None, result.output_tokens or None)
        return_to = pending["return_to"]
        resumes_step = state.get("step") == return_to and state.get("step_open")
        update: dict[str, Any] = {"pending": None}
        with result.journal.write_session() as session:
            close_delegation(session, delegation_id=delegation_id, result=typed.model_dump(), status=typed.status,
                             input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=_cost(run, *tokens))
            if not resumes_step and return_to in PROCEDURE.step_names:  # a failure edge returns to a new round
                update["opened"] = _open(session, run.mission_id, return_to, notes_after=state.get("notes_seq") or 0)
        signals = _signals_of(state) + [{"kind": s.kind, "detail": s.detail, "data": s.data} for s in result.signals]
        blocking = [f for f in typed.findings if f.severity in _BLOCKING]
        if blocking and not any(s["kind"] == "compliance" for s in signals):
            signals.append({"kind": "compliance", "detail": "; ".join(f.title for f in blocking), "data": {}})
        if pending["tool_call_id"]:
            reply: Any = ToolMessage(content=typed.model_dump_json(), tool_call_id=pending["tool_call_id"],
                                     name=HANDOFF_PREFIX + name.replace("-", "_"))
        else:
            reply = HumanMessage(content=f"[{agent.title} reports back on '{reason}' in step {step}]\n"
                                         f"{typed.model_dump_json()}")
        return Command(goto=return_to, update={**update, "messages": [reply], "signals": signals})

    subagent_node.__name__ = f"agent_{name.replace('-', '_')}"
    return subagent_node


def _cost(run: RunContext, input_tokens: int | None, output_tokens: int | None) -> float | None:
    s = run.settings
    if s.price_input_per_mtok is None or s.price_output_per_mtok is None or input_tokens is None:
        return None
    return round(((input_tokens or 0) * s.price_input_per_mtok + (output_tokens or 0) * s.price_output_per_mtok)
                 / 1_000_000, 6)


def _check_guards(session, run: RunContext, source: str, target: str, step: str) -> None:  # noqa: ANN001
    total = count_delegations(session, mission_id=run.mission_id)
    if total >= run.settings.max_handoffs:
        raise LimitExceeded(f"handoff limit reached: {total} handoffs in this mission (ORCH_MAX_HANDOFFS="
                            f"{run.settings.max_handoffs}); stopping instead of delegating {source} -> {target}")
    same = count_delegations(session, mission_id=run.mission_id, from_agent=source, to_agent=target, step=step)
    if same >= run.settings.max_edge_repeats:
        raise LimitExceeded(f"ping-pong detected: {source} -> {target} in step {step} taken {same} times "
                            f"(ORCH_MAX_EDGE_REPEATS={run.settings.max_edge_repeats})")


def build_graph(agents: Mapping[str, AgentSpec]) -> StateGraph:
    """The uncompiled procedure graph for these agent definitions (handoff edges checked here)."""
    validate_edges(agents)
    graph = StateGraph(MissionState, context_schema=RunContext)
    nodes = {**{step: _make_step_node(step) for step in PROCEDURE.step_names},
             **{name: _make_subagent_node(name) for name in SUB_AGENTS},
             "review": review, "release_gate": release_gate}
    for name in PROCEDURE.nodes:
        kind = "step" if name in PROCEDURE.step_names else "delegation" if name in SUB_AGENTS else "gate"
        graph.add_node(name, traced_node(name, nodes[name], kind=kind), destinations=PROCEDURE.destinations(name))
    graph.add_edge(START, PROCEDURE.steps[0].name)
    return graph
