"""The procedure graph: the ML engineer's six steps, the sub-agents as handoff targets, failure-mode edges
and human gates.

    align -> design -> implement -> evaluate -> package -> release -> release_gate -> report
      each step may hand off to a sub-agent (transfer_to_<agent>) and get its typed result back;
      evaluate --underperforms--> data-scientist --> evaluate (bounded) --> escalate (human)
      package  --compliance-->    package again (bounded) --> blocked (mission fails, release never runs)
      any step --infrastructure--> devops-engineer --> next step
      any step --access_denied-->  manual_plan --> next step

``build_graph`` returns an uncompiled ``StateGraph``; the caller compiles it with its checkpointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from agents.spec import LEAD_AGENT, SUB_AGENTS, AgentSpec
from orchestrator.agent_loop import run_agent
from orchestrator.audit import append_event
from orchestrator.briefs import Brief, HandoffResult
from orchestrator.context import RunContext
from orchestrator.db import session_scope
from orchestrator.db.delegations import (
    close_delegation,
    count_delegations,
    find_open_delegation,
    open_delegation,
)
from orchestrator.db.direct import Statement, Writer, transaction
from orchestrator.db.missions import STEPS, finish_step, start_step, step_status
from orchestrator.db.models import Event
from orchestrator.errors import LimitExceeded
from orchestrator.executor import gate
from orchestrator.handoff import HANDOFF_EDGES, HANDOFF_PREFIX, validate_edges
from orchestrator.journal import Journal
from orchestrator.prompts import RunFacts, brief_message, step_message, system_prompt
from orchestrator.state import INITIAL_STATE, MissionState, OpenedStep, PendingHandoff
from orchestrator.views import release_payload

__all__ = ["build_graph", "first_input", "NODES", "DETOUR_STEPS"]

DETOUR_STEPS = ("manual_plan",)
LEAD_STEPS = (*STEPS, "report", *DETOUR_STEPS)
NODES = (*LEAD_STEPS, "release_gate", "escalate", *SUB_AGENTS)
_NEXT = {"align": "design", "design": "implement", "implement": "evaluate", "evaluate": "package",
         "package": "release", "release": "release_gate", "report": END}
_BLOCKING = ("high", "critical")

Goto = Literal["align", "design", "implement", "evaluate", "package", "release", "release_gate", "report",
               "manual_plan", "escalate", "data-scientist", "devops-engineer", "security-expert",
               "backend-developer", "__end__"]


def _signals_of(state: MissionState) -> list[dict[str, Any]]:
    return list(state.get("signals") or [])


_NOTES = Statement("SELECT seq, payload FROM events WHERE mission_id = :mission_id AND kind = 'user.message' "
                   "AND seq > :seq ORDER BY seq", Event.__table__, returns=("seq", "payload"))


def _unread_notes(session: Writer, mission_id: str, after: int) -> tuple[list[str], int]:
    """The user messages posted after event ``after``, and the seq of the last one."""
    rows = _NOTES.run(session, {"mission_id": mission_id, "seq": after})
    return [str(payload.get("text", "")) for _, payload in rows], (rows[-1][0] if rows else after)


def _open(session: Writer, mission_id: str, step: str, *, notes_after: int) -> OpenedStep:
    """Open ``step`` for the node that runs it next, in the transaction that ends the node before it.

    The step's running round is reused when there is one: a node re-executed after a crash (its records
    committed, its checkpoint lost) opens the round it opened the first time, and the step it leads to
    replays that round's journal instead of acting again.
    """
    current = step_status(session, mission_id=mission_id, name=step)
    if current is not None and current[0] == "running":
        rounds = current[1]
    else:
        rounds = start_step(session, mission_id=mission_id, name=step, actor=LEAD_AGENT)
    notes, seen = _unread_notes(session, mission_id, notes_after)
    return {"step": step, "round": rounds, "notes": notes, "notes_seq": seen}


def first_input(session: Writer, *, mission_id: str) -> dict[str, Any]:
    """The graph's input for a mission that never ran: the initial state, its first step opened in the
    caller's transaction (the one that marks the mission running)."""
    return {**INITIAL_STATE, "opened": _open(session, mission_id, STEPS[0], notes_after=0)}


def _open_step(run: RunContext, step: str, state: MissionState, *,
               starting: bool) -> tuple[int, list[str], int, Journal]:
    """The step's round (opened by the node before, see :func:`_open`), the user messages not yet seen,
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


def _route_after(step: str, signals: list[dict[str, Any]], state: MissionState, run: RunContext,
                 rounds: int) -> tuple[str, dict[str, Any]]:
    """Where a finished step goes: the failure-mode edges first, then the procedure's next step."""
    kinds = {signal["kind"] for signal in signals}
    detail = "; ".join(signal["detail"] for signal in signals)[:2000]
    after = state.get("after") or _NEXT.get(step, END)  # type: ignore[call-overload]
    if step in DETOUR_STEPS:
        return after, {"after": None}
    nxt = _NEXT[step]
    if step == "evaluate" and "underperforms" in kinds:
        if (state.get("eval_rounds") or 0) + 1 < run.settings.max_eval_rounds:
            brief = Brief(task="Evaluation is below the agreed acceptance thresholds: diagnose the cause and retrain "
                               "or adjust features; report the candidate's measured figures.",
                          context=detail, expected_output="Diagnosis, candidate model path and its metrics.")
            return _detour("data-scientist", step, "underperforms", brief, return_to="evaluate")
        return "escalate", {}
    if step == "package" and "compliance" in kinds:
        return ("package" if rounds < 2 else "__blocked__"), {"blocked": detail or "security finding"}
    if step == "package":
        return nxt, {"blocked": None}
    if "infrastructure" in kinds:
        brief = Brief(task="The resource estimate does not fit the mission's constraint: propose the scaling "
                           "(workers, node size, sharding) that makes it fit, with its cost.",
                      context=detail, expected_output="A sizing that fits, with margin and cost.")
        return _detour("devops-engineer", step, "infrastructure", brief, return_to=nxt)
    if "access_denied" in kinds and "manual_plan" not in (state.get("detours_done") or []):
        return "manual_plan", {"after": nxt, "detours_done": [*(state.get("detours_done") or []), "manual_plan"]}
    return nxt, {}


def _detour(to: str, step: str, reason: str, brief: Brief, *, return_to: str) -> tuple[str, dict[str, Any]]:
    pending: PendingHandoff = {"to": to, "from_agent": LEAD_AGENT, "step": step, "reason": reason,
                               "brief": brief.model_dump(), "tool_call_id": None, "return_to": return_to}
    return to, {"pending": pending}


def _make_step_node(step: str):  # noqa: ANN202
    position = STEPS.index(step) if step in STEPS else None

    def step_node(state: MissionState, runtime: Runtime[RunContext]) -> Command[Goto]:
        run = runtime.context
        lead = run.agents[LEAD_AGENT]
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
            new_messages.append(step_message(lead, step, position, round_=rounds, note=note.strip()))
            update["notes_seq"] = seen
        facts = RunFacts(agent=lead.name, step=step, round=rounds, reason="planned", scope=_scope(step, rounds),
                         workspace=str(run.workspace))
        peers = [run.agents[name] for name in HANDOFF_EDGES[lead.name]]
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
        summary = result.final.content if result.final is not None and isinstance(result.final.content, str) else ""
        goto, extra = _route_after(step, signals, state, run, rounds)
        status = "blocked" if goto in ("__blocked__",) or (step == "package" and goto == "package") else "done"
        if step == "evaluate" and goto in ("data-scientist", "escalate"):
            status = "failed"
        with result.journal.write() as session:
            # Idempotent on a replay: only the round still running is finished, and the next step's open round
            # is reused. The next step starts as this one ends: one transaction, one moment.
            finish_step(session, mission_id=run.mission_id, name=step, round_=rounds, actor=lead.name,
                        status=status, summary=summary)
            if goto in LEAD_STEPS:
                update["opened"] = _open(session, run.mission_id, goto,
                                         notes_after=update.get("notes_seq", state.get("notes_seq") or 0))
        update.update(extra, step_open=False)
        if step == "evaluate":
            update["eval_rounds"] = (state.get("eval_rounds") or 0) + 1
        if goto == "__blocked__":
            update["outcome"] = f"failed: release blocked by security review: {extra.get('blocked')}"
            return Command(goto=END, update=_changed(state, update))
        if goto == END:
            update["outcome"] = "completed"
        return Command(goto=goto, update=_changed(state, update))

    step_node.__name__ = f"step_{step}"
    return step_node


def _make_subagent_node(name: str):  # noqa: ANN202
    def subagent_node(state: MissionState, runtime: Runtime[RunContext]) -> Command[Goto]:
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
            if not resumes_step and return_to in LEAD_STEPS:  # a failure edge returns to a new round of a step
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


def release_gate(state: MissionState, runtime: Runtime[RunContext]) -> Command[Literal["report", "__end__"]]:
    """Ask a human to approve the release plan before anything is promoted."""
    run = runtime.context
    decision, by, comment = gate(run, key="release", kind="release", step="release", agent=LEAD_AGENT,
                                 question="Approve the release: shadow -> canary -> promote as planned?",
                                 payload=lambda session: release_payload(session, run))
    if decision == "approved":
        with transaction(run.database_url) as tx:
            opened = _open(tx, run.mission_id, "report", notes_after=state.get("notes_seq") or 0)
        return Command(goto="report", update={"opened": opened})
    return Command(goto=END, update={"outcome": f"rejected: release rejected by {by}" + (f": {comment}" if comment else "")})


def escalate(state: MissionState, runtime: Runtime[RunContext]) -> Command[Literal["package", "__end__"]]:
    """Evaluation stayed below thresholds after the bounded rounds: a human decides whether to go on."""
    run = runtime.context
    detail = "; ".join(s["detail"] for s in _signals_of(state))[:2000]
    decision, by, comment = gate(
        run, key=f"escalation:{state.get('eval_rounds')}", kind="escalation", step="evaluate", agent=LEAD_AGENT,
        question=f"Evaluation is still below the acceptance thresholds after {state.get('eval_rounds')} rounds. "
                 "Continue to packaging with the risk recorded?", payload={"signals": _signals_of(state),
                                                                         "detail": detail})
    if decision == "approved":
        with transaction(run.database_url) as tx:
            append_event(tx, mission_id=run.mission_id, kind="risk.accepted", actor=by, step="evaluate",
                         payload={"detail": detail, "comment": comment})
            opened = _open(tx, run.mission_id, "package", notes_after=state.get("notes_seq") or 0)
        return Command(goto="package", update={"signals": [], "opened": opened})
    return Command(goto=END, update={"outcome": f"failed: evaluation below thresholds; escalation rejected by {by}"})


def build_graph(agents: Mapping[str, AgentSpec]) -> StateGraph:
    """The uncompiled procedure graph for these agent definitions (handoff edges checked here)."""
    validate_edges(agents)
    graph = StateGraph(MissionState, context_schema=RunContext)
    for step in LEAD_STEPS:
        graph.add_node(step, _make_step_node(step))
    for name in SUB_AGENTS:
        graph.add_node(name, _make_subagent_node(name))
    graph.add_node("release_gate", release_gate)
    graph.add_node("escalate", escalate)
    graph.add_edge(START, "align")
    return graph
