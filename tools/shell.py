"""The ``Bash`` capability: one shell command in the mission's sandbox."""

from __future__ import annotations

import json

from langchain_core.tools import tool

from tools.context import Ctx
from tools.redaction import redact
from tools.sandbox import run_sandboxed

__all__ = ["bash", "CAPABILITIES"]

# SkipValidation: pydantic cannot (and must not) rebuild the context; the tool needs the caller's object.


@tool(parse_docstring=True)
def bash(command: str, timeout_s: float | None = None, *, ctx: Ctx) -> str:
    """Run a bash command in the mission workspace, inside an isolated sandbox.

    The workspace is mounted read-write at /workspace, which is also the working directory and HOME;
    paths outside it are invisible or read-only. There is no network access. The project's Python
    (with numpy, pandas, scikit-learn, pytest) is first on PATH, e.g. `python -m pipelines.batch_scoring`.
    /tmp is private, small (it lives in memory) and discarded after the command. Disk use has quotas: the
    size of /tmp, the size of any one file, and how much one command may add to the workspace; running
    into one is an error naming the quota. Each call starts a fresh shell: variables and
    background processes do not survive between calls. Returns JSON with exit_code, stdout_tail,
    stderr_tail, duration_s, timed_out, truncated (long output keeps only its beginning and end, with a
    note of the bytes dropped), sandboxed, and status (``error`` when the command failed or was killed).

    Args:
        command: The bash script to run, e.g. `ls -la data && python -m pytest -q`.
        timeout_s: Wall-clock limit in seconds; defaults to, and cannot exceed, the configured maximum.
            The command is killed when it is reached (timed_out is then true).
    """
    result = run_sandboxed(command, ctx.workspace, ctx.settings, timeout_s)
    payload = result.as_dict()
    payload["stdout_tail"] = redact(payload["stdout_tail"])
    payload["stderr_tail"] = redact(payload["stderr_tail"])
    # The call's outcome is part of its result: a command that failed or was killed is an error on the record.
    payload["status"] = "ok" if result.exit_code == 0 and not result.timed_out else "error"
    return json.dumps(payload)


CAPABILITIES = {"Bash": [bash]}
