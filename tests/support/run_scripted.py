"""Run (or resume) a scripted mission in its own process, so a test can kill it with SIGKILL.

    python -m tests.support.run_scripted DB_URL MISSION_ID SCRIPT_NAME [DIE_AT]

``SCRIPT_NAME`` ``builtin`` runs the built-in planner instead of a script.

``DIE_AT`` ``after-tool:NAME`` kills the process with SIGKILL as soon as the tool NAME returns (its effects
made, its result not recorded). Otherwise it injects a fault at the checkpointer, LangGraph's boundary with the database: the process dies
(``os._exit``) once a node's own records are committed but before LangGraph saved the node's outcome.
``writes:NODE`` dies as LangGraph is about to save the writes of that node's task (so the node runs
again on resume); ``checkpoint:N`` dies as it is about to write the checkpoint of superstep N (the
task's writes may or may not have been saved by then).
"""

from __future__ import annotations

import os
import sys

from orchestrator.config import Settings
from orchestrator.runner import Runner
from tests.support.mission_scripts import PerMissionScripts
from tests.support.missions import SCRIPTS


def _die_after_tool(name: str) -> None:
    """SIGKILL this process as soon as the tool ``name`` returns: its effects are made, its result unrecorded."""
    import signal

    from langchain_core.tools import BaseTool

    def dying_invoke(self, *args, _invoke=BaseTool.invoke, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        output = _invoke(self, *args, **kwargs)
        if self.name == name:
            os.kill(os.getpid(), signal.SIGKILL)
        return output

    BaseTool.invoke = dying_invoke  # type: ignore[method-assign]


def _die_at(where: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    kind, _, target = where.partition(":")
    if kind == "after-tool":
        _die_after_tool(target)
        return
    for saver in (SqliteSaver, PostgresSaver):
        def dying_put(self, config, checkpoint, metadata, new_versions, *, _put=saver.put):  # noqa: ANN001, ANN202
            if kind == "checkpoint" and metadata.get("step") == int(target):
                os._exit(137)
            return _put(self, config, checkpoint, metadata, new_versions)

        def dying_put_writes(self, config, writes, task_id, *args, _put_writes=saver.put_writes, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if kind == "writes" and ("step", target) in [tuple(w) for w in writes]:
                os._exit(137)
            return _put_writes(self, config, writes, task_id, *args, **kwargs)

        saver.put = dying_put  # type: ignore[method-assign]
        saver.put_writes = dying_put_writes  # type: ignore[method-assign]


def main() -> None:
    url, mission_id, script = sys.argv[1:4]
    if len(sys.argv) > 4:
        _die_at(sys.argv[4])
    if script == "builtin":  # the built-in planner, as `orchestrator run` has it, sandboxed shell included
        with Runner(Settings(database_url=url, _env_file=None)) as runner:
            print(runner.run(mission_id), flush=True)
        return
    settings = Settings(database_url=url, allow_unsandboxed_shell=True, _env_file=None)
    # Answers already journaled are replayed from the database, not asked again: the factory skips them.
    scripts = PerMissionScripts(SCRIPTS[script])
    with Runner(settings, model_factory=scripts.factory) as runner:
        print(runner.run(mission_id), flush=True)


if __name__ == "__main__":
    main()
