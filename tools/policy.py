"""The policy layer's pure logic: who may call what, what counts as production data, what an approval binds.

The orchestrator's executor calls these around every tool call; nothing here touches the database, the
workspace or the network, so each rule is testable on its own.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Literal

from orchestrator.errors import ToolDenied

__all__ = ["check_allowed", "production_targets", "digest", "call_fingerprint", "Replay", "replay_policy"]

Replay = Literal["free", "retry", "report"]
"""What a resumed run does with a call that was running when its process died.

``free``: the tool changes nothing, so nothing is recorded before it runs and it simply runs again.
``retry``: its effects are keyed by the call id (task rows, artifact records, files by content, monitoring
history rows by batch and model), so running it again with the same key makes each effect once.
``report``: its effects cannot be keyed (a shell command, another server's tool): it is not run again; the
agent gets a result saying it was interrupted and decides what to do.
"""

READ_ONLY = frozenset({"read_file", "list_files", "task_list", "web_search", "docs_lookup", "locate_inputs",
                       "profile_dataset", "fingerprint_dataset", "inspect_model"})
"""Built-in tools that only read."""
UNKEYED = frozenset({"bash"})
"""Built-in tools whose effects are not keyed by the call."""


def replay_policy(tool_name: str, *, builtin: bool = True) -> Replay:
    """How a call of ``tool_name`` interrupted by a crash is handled on resume (see :data:`Replay`)."""
    if tool_name in READ_ONLY and builtin:
        return "free"
    if tool_name in UNKEYED or not builtin:
        return "report"
    return "retry"

# Free text the model writes (file contents, notes, queries) is not a target: touching data happens
# through paths, commands and URLs, and a script that reads production data is caught when it runs.
_TEXT_KEYS = frozenset({"content", "old_text", "new_text", "notes", "title", "query", "symbol", "message"})
_COMMAND_KEYS = frozenset({"command", "extra_args", "args", "cmd"})
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


def check_allowed(tool_name: str, allowed_names: Iterable[str]) -> None:
    """Refuse ``tool_name`` unless the calling agent was granted it, naming the tools it does have."""
    allowed = sorted(set(allowed_names))
    if tool_name not in allowed:
        raise ToolDenied(
            f"tool {tool_name!r} is not allowed for this agent; its tools are: {', '.join(allowed) or 'none'}. "
            "Use one of those, or hand the work to an agent that has this tool."
        )


def _command_tokens(command: str) -> list[str]:
    try:
        tokens = shlex.split(command, comments=False, posix=True)
    except ValueError:  # unbalanced quotes: fall back to whitespace, never to "no targets"
        tokens = command.split()
    out: list[str] = []
    for token in tokens:
        for piece in re.split(r"[;|&()`<>]+", token):  # operators and redirections glued to words
            if "=" in piece and not _URL_RE.match(piece):
                out.extend(part for part in piece.split("=", 1) if part)  # --input=prod/x.csv, VAR=path
            elif piece:
                out.append(piece)
    return out


def _candidates(tool_name: str, args: Mapping[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(key: str, value: Any) -> None:
        if isinstance(value, str):
            if key in _TEXT_KEYS:
                return
            if key in _COMMAND_KEYS or tool_name == "bash":
                found.extend(_command_tokens(value))
            else:
                found.append(value.strip())
        elif isinstance(value, Mapping):
            for sub_key, sub_value in value.items():
                walk(str(sub_key), sub_value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(key, item)

    for key, value in args.items():
        if key != "ctx":
            walk(key, value)
    return found


def _normalise(candidate: str) -> list[str]:
    text = candidate.strip().strip("'\"").lower()
    if _URL_RE.match(text):
        return [text]
    while text.startswith("./"):
        text = text[2:]
    forms = [text, text.lstrip("/")]
    # A directory named without its trailing slash ("data/prod") is still the production folder.
    forms += [form.rstrip("/") + "/" for form in forms if form]
    return forms


def production_targets(tool_name: str, args: Mapping[str, Any], patterns: Iterable[str]) -> list[str]:
    """The paths, command words and URLs in ``args`` that match a production pattern (case-insensitive).

    Paths are matched as given (workspace-relative) and without a leading ``/``; for shell commands every
    word is a candidate, with redirections (``>prod/x``) and ``--opt=value`` forms split apart.
    """
    matcher = _matcher(tuple(patterns))
    if matcher is None:
        return []
    targets: list[str] = []
    for candidate in _candidates(tool_name, args):
        if not candidate or candidate in targets:
            continue
        if any(matcher(form) for form in _normalise(candidate)):
            targets.append(candidate)
    return targets


@lru_cache(maxsize=32)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None] | None:
    """One regex for all the (lower-cased) glob patterns: every tool call is checked against them."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(pattern.lower())})" for pattern in patterns)).match


def digest(obj: Any) -> str:
    """SHA-256 of ``obj``'s canonical JSON (sorted keys, no whitespace); the same value always hashes the same."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def call_fingerprint(tool_name: str, args: Mapping[str, Any]) -> str:
    """What an approval is bound to: the tool and its exact arguments (the injected context excluded)."""
    return digest({"tool": tool_name, "args": {key: value for key, value in args.items() if key != "ctx"}})
