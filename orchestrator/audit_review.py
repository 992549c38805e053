"""The delegation audit review in the terminal: who delegated what to whom, when, why, and the timeline."""

from __future__ import annotations

from sqlalchemy import select

from orchestrator.audit import verify_chain
from orchestrator.db import session_scope
from orchestrator.db.missions import get_mission
from orchestrator.db.models import Delegation, Event
from orchestrator.db.schema import upgrade
from orchestrator.progress import describe_event
from orchestrator.views import iso

__all__ = ["print_review"]


def print_review(url: str, mission_id: str) -> None:
    """Print the delegation tree (lead -> sub-agents, per step), then every event of the trail."""
    upgrade(url)
    with session_scope(url) as session:
        mission = get_mission(session, mission_id)
        delegations = session.scalars(select(Delegation).where(Delegation.mission_id == mission_id)
                                      .order_by(Delegation.id)).all()
        events = session.scalars(select(Event).where(Event.mission_id == mission_id).order_by(Event.seq)).all()
        report = verify_chain(session, mission_id)
        lead = mission.spec.get("agent", "ml-engineer")
        print(f"mission {mission.id} [{mission.status}]: {mission.spec.get('objective', '')}")
        forked = next((e.payload for e in events if e.kind == "mission.forked"), None)
        if mission.parent_id or forked:
            print(f"forked from mission {mission.parent_id or forked['parent_id']}"
                  + (f" at step {forked['from_step']} (its record up to there: orchestrator audit "
                     f"{forked['parent_id']})" if forked else ""))
        print(f"delegation tree\n{lead}")
        for d in delegations:
            cost = f", ${d.cost_usd}" if d.cost_usd is not None else ""
            tokens = f", {d.input_tokens}+{d.output_tokens} tokens" if d.input_tokens else ""
            print(f"├─ [{d.step}] -> {d.to_agent}  ({d.reason}; {d.status}; {d.duration_ms} ms{tokens}{cost})")
            print(f"│    why:  {d.brief.get('task', '')}")
            print(f"│    back: {(d.result or {}).get('summary', '')[:200]}")
            print(f"│    definitions: {d.from_sha256[:12]} -> {d.to_sha256[:12]}")
        print("timeline")
        for e in events:
            line = describe_event(e.kind, e.actor, e.step, e.payload) or f"{e.kind}"
            print(f"  #{e.seq:<4} {iso(e.ts)}  {e.actor:<18} {line}")
        print(report.describe())
