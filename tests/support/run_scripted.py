"""Run (or resume) a scripted mission in its own process, so a test can kill it with SIGKILL.

    python -m tests.support.run_scripted DB_URL MISSION_ID SCRIPT_NAME
"""

from __future__ import annotations

import sys

from orchestrator.config import Settings
from orchestrator.runner import Runner
from tests.support.mission_scripts import PerMissionScripts
from tests.support.missions import SCRIPTS


def main() -> None:
    url, mission_id, script = sys.argv[1:4]
    settings = Settings(database_url=url, allow_unsandboxed_shell=True, _env_file=None)
    # Answers already journaled are replayed from the database, not asked again: the factory skips them.
    scripts = PerMissionScripts(SCRIPTS[script])
    with Runner(settings, model_factory=scripts.factory) as runner:
        print(runner.run(mission_id), flush=True)


if __name__ == "__main__":
    main()
