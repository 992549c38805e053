"""Per-step orchestration overhead of our procedure graph against a bare LangGraph graph of the same shape.

Both graphs run the same seven lead steps and the release gate between release and report; in each step a
scripted chat model asks for one cheap tool call (``list_files`` on an empty workspace) and then answers.
The bare graph checkpoints with LangGraph's SQLite saver and records nothing else; ours also claims the
mission, writes its journal, tool calls, steps, approval, audit chain and final status (``Runner.run``).
Both checkpoint synchronously into files in the temporary directory (``TMPDIR`` picks where; the saver
syncs each checkpoint, so the storage's sync latency is part of both).

    python bench/graph_overhead.py [--missions 10] [--rounds 9]
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402

from orchestrator.config import Settings  # noqa: E402
from orchestrator.runner import Runner  # noqa: E402
from tests.support.fake_chat import ScriptedChatModel, Scripts, ai, call  # noqa: E402
from tools.files import list_files  # noqa: E402

STEPS = ("align", "design", "implement", "evaluate", "package", "release", "report")
MISSION = "Mission: Productionize the anomaly detection model."


def _script(tag: str) -> list[AIMessage]:
    out: list[AIMessage] = []
    for step in STEPS:
        out += [ai("", call("list_files", f"{tag}-{step}", path=".")), ai(f"{step} done")]
    return out


def bare_graph(saver: SqliteSaver, workspace: Path, ctx_factory):  # noqa: ANN001, ANN201
    graph = StateGraph(MessagesState)
    previous = START
    for step in STEPS:
        def node(state: MessagesState, *, _step: str = step) -> dict:
            model = state_model[0]
            messages = list(state["messages"])
            new = []
            while True:
                answer = model.invoke(messages)
                messages.append(answer)
                new.append(answer)
                if not answer.tool_calls:
                    return {"messages": new}
                for tc in answer.tool_calls:
                    out = list_files.invoke({**tc["args"], "ctx": ctx_factory()})
                    reply = ToolMessage(content=out, tool_call_id=tc["id"])
                    messages.append(reply)
                    new.append(reply)

        graph.add_node(step, node)
        graph.add_edge(previous, step)
        previous = step
        if step == "release":  # our graph passes a release gate here (approved on the spot in this run)
            graph.add_node("release_gate", lambda state: {})
            graph.add_edge(previous, "release_gate")
            previous = "release_gate"
    graph.add_edge(previous, END)
    return graph.compile(checkpointer=saver)


state_model: list[ScriptedChatModel] = []


def _settle_heap() -> None:
    """Both graphs start timing from the same heap state: collected, and frozen as a service freezes its
    start-up heap (the Runner does so when built), so neither pays for the other's garbage."""
    gc.collect()
    gc.freeze()


def run_bare(tmp: Path, missions: int, workspace: Path, settings: Settings) -> float:
    from orchestrator.recorder import DatabaseRecorder
    from tools.context import ToolContext

    conn = sqlite3.connect(tmp / "bare.db", check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()

    def ctx_factory() -> ToolContext:
        return ToolContext(workspace=workspace, mission_id="bare", agent="ml-engineer", step="x", settings=settings,
                           recorder=DatabaseRecorder(settings.resolved_database_url, "bare"))

    graph = bare_graph(saver, workspace, ctx_factory)
    _settle_heap()
    start = time.perf_counter()
    for index in range(missions):
        state_model[:] = [ScriptedChatModel(messages=iter(_script(f"bare{index}")))]
        # A new thread per mission, as ours has: a reused thread would carry its earlier rounds' messages.
        graph.invoke({"messages": []}, {"configurable": {"thread_id": uuid.uuid4().hex}}, durability="sync")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / (missions * len(STEPS))


def run_ours(missions: int, workspace: Path, settings: Settings) -> float:
    total = 0.0
    scripts = Scripts({"ml-engineer": [m for i in range(missions) for m in _script(f"ours{i}")]})
    with Runner(settings, model_factory=scripts.factory) as runner:
        _settle_heap()
        for _ in range(missions):
            mission_id = runner.submit(MISSION, workspace=workspace, auto_approve_by="bench")
            start = time.perf_counter()
            status = runner.run(mission_id)
            total += time.perf_counter() - start
            assert status == "completed", status
    return total / (missions * len(STEPS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        workspace = tmp / "ws"
        workspace.mkdir()
        settings = Settings(home=tmp / "home", database_url=f"sqlite:///{tmp / 'ours.db'}", _env_file=None)
        # warm up imports and the registry once for both
        run_ours(1, workspace, settings)
        run_bare(tmp, 1, workspace, settings)
        # Paired rounds: each round times both graphs back to back (alternating which goes first), so a
        # disturbance of the VM (fsync latency above all: both savers sync every checkpoint) hits both; the
        # ratio reported is the median of the rounds' ratios.
        bare_runs, our_runs = [], []
        for index in range(args.rounds):
            if index % 2:
                our_runs.append(run_ours(args.missions, workspace, settings))
                bare_runs.append(run_bare(tmp, args.missions, workspace, settings))
            else:
                bare_runs.append(run_bare(tmp, args.missions, workspace, settings))
                our_runs.append(run_ours(args.missions, workspace, settings))
    ratios = sorted(o / b for o, b in zip(our_runs, bare_runs, strict=True))
    print(f"rounds: {args.rounds} x {args.missions} missions, each round timing both graphs")
    for label, runs in (("bare LangGraph + SqliteSaver:", bare_runs), ("our procedure graph:", our_runs)):
        print(f"{label:30s}{statistics.median(runs) * 1000:8.2f} ms per step (median; best {min(runs) * 1000:.2f})")
    print(f"overhead ratio (ours / bare): {statistics.median(ratios):8.2f}x   (guard <= 2x; median of the rounds' "
          f"ratios, range {ratios[0]:.2f}-{ratios[-1]:.2f})")


if __name__ == "__main__":
    main()
