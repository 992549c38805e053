"""Run (or resume) a scripted mission in its own process, so a test can kill it with SIGKILL.

    python -m tests.support.run_scripted DB_URL MISSION_ID SCRIPT_NAME
"""

from __future__ import annotations

import sys

from sqlalchemy import select

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import ModelTurn
from orchestrator.runner import Runner
from tests.support.fake_chat import Scripts
from tests.support.missions import SCRIPTS


def main() -> None:
    url, mission_id, script = sys.argv[1:4]
    settings = Settings(database_url=url, allow_unsandboxed_shell=True, _env_file=None)
    with session_scope(url) as session:
        keys = session.scalars(select(ModelTurn.key).where(ModelTurn.mission_id == mission_id)).all()
    # Answers already journaled are replayed from the database, not asked again: skip them in the script.
    skip: dict[str, int] = {}
    for key in keys:
        agent = key.split(":", 1)[0]
        skip[agent] = skip.get(agent, 0) + 1
    scripts = Scripts(SCRIPTS[script](), skip=skip)
    with Runner(settings, model_factory=scripts.factory) as runner:
        print(runner.run(mission_id), flush=True)


if __name__ == "__main__":
    main()
