"""What a client's run asks for: a mission (the text of its input's messages) or a decision on a gate
(its ``command.resume``), read with the same rules as ``/api/v1``: a decision quotes the payload's hash."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.db.approvals import Decision as Decided
from orchestrator.errors import InputError, InvalidTransition

__all__ = ["Decision", "mission_text", "decision_of"]

_SHA = re.compile(r"^[0-9a-f]{64}$")
_RESUME_FORM = ("resume with {'decision': 'approve', 'reject' or 'request_changes', 'payload_sha256': <the SHA-256 "
                "shown in the interrupt>, 'comment': '...'}")
_WORDS: dict[str, Decided] = {"approve": "approved", "approved": "approved", "accept": "approved",
                              "reject": "rejected", "rejected": "rejected",
                              "request_changes": "changes_requested", "changes_requested": "changes_requested"}


@dataclass(frozen=True)
class Decision:
    """A decision on one gate, quoting the hash of the payload the person was shown."""

    approval_id: int
    decision: Decided
    payload_sha256: str
    comment: str | None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "\n".join(block if isinstance(block, str) else str(block.get("text", ""))
                         for block in content if isinstance(block, str)
                         or (isinstance(block, dict) and block.get("type") == "text"))
    return ""


def mission_text(graph_input: Any) -> str:
    """The mission: the text of the input's human messages, in order."""
    messages = graph_input.get("messages") if isinstance(graph_input, dict) else None
    if isinstance(messages, (dict, str)):
        messages = [messages]
    texts = []
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, str):
            texts.append(message)
        elif isinstance(message, dict) and (message.get("role") or message.get("type")) in ("user", "human"):
            texts.append(_text(message.get("content")))
    text = "\n\n".join(t.strip() for t in texts if t.strip())
    if not text:
        raise InputError("the run's input holds no mission: send it as a human message, "
                         "input={'messages': [{'role': 'user', 'content': 'Mission: ...'}]}")
    return text


def _one(value: Any) -> tuple[int | None, Any]:
    """(approval id or None, the decision) from a resume value: bare, a one-item list, or keyed by interrupt id."""
    if isinstance(value, list):
        if len(value) != 1:
            raise InputError(f"a resume decides one gate; got a list of {len(value)}: {_RESUME_FORM}")
        value = value[0]
    if isinstance(value, dict) and value and all(str(key).startswith("approval-") for key in value):
        if len(value) != 1:
            raise InputError("a resume decides one gate at a time; got decisions for "
                             + ", ".join(map(str, value)))
        ((key, inner),) = value.items()
        number = str(key).removeprefix("approval-")
        if not number.isdigit():
            raise InputError(f"{key!r} is not an interrupt this server raised")
        return int(number), (inner[0] if isinstance(inner, list) and len(inner) == 1 else inner)
    return None, value


def _human_response(value: dict[str, Any]) -> tuple[Decided, Any, str | None]:
    """(decision, quoted hash, comment) from an Agent Inbox ``HumanResponse``: ``accept`` approves (its action
    request carries the hash), ``response`` asks for changes with its text, ``ignore`` rejects."""
    kind, args = value.get("type"), value.get("args")
    if kind == "accept":
        inner = args.get("args", args) if isinstance(args, dict) else {}
        quoted = value.get("payload_sha256") or (inner.get("payload_sha256") if isinstance(inner, dict) else None)
        return "approved", quoted, value.get("comment")
    if kind == "response":
        return "changes_requested", value.get("payload_sha256"), args if isinstance(args, str) else value.get("comment")
    if kind == "ignore":
        return "rejected", value.get("payload_sha256"), value.get("comment")
    raise InputError(f"a {kind!r} response cannot decide a gate: the approval is bound to the payload as shown, "
                     f"which cannot be edited; {_RESUME_FORM}")


def decision_of(resume: Any, *, pending: list[int]) -> Decision:
    """The decision a ``command.resume`` value carries, on one of the ``pending`` approvals."""
    if not pending:
        raise InvalidTransition("the thread has no pending approval to resume")
    approval_id, value = _one(resume)
    if not isinstance(value, dict):
        raise InputError(f"resume value {str(value)[:80]!r} is not a decision: {_RESUME_FORM}")
    if "type" in value and "decision" not in value:
        decided, quoted, comment = _human_response(value)
    else:
        word = str(value.get("decision", "")).lower()
        if word not in _WORDS:
            raise InputError(f"decision {value.get('decision')!r} is not one of approve, reject, request_changes: "
                             + _RESUME_FORM)
        decided, quoted, comment = _WORDS[word], value.get("payload_sha256"), value.get("comment")
    if not isinstance(quoted, str) or not _SHA.match(quoted):
        raise InputError("the resume does not quote the payload's SHA-256 (payload_sha256, 64 hex digits): a "
                         "decision must name the exact payload it approves, as shown in the interrupt; "
                         + _RESUME_FORM)
    if comment is not None and (not isinstance(comment, str) or len(comment) > 4000):
        raise InputError("comment must be text of at most 4000 characters")
    if approval_id is None:
        if len(pending) > 1:
            raise InvalidTransition(f"{len(pending)} gates are pending: resume one of them by its interrupt id, "
                                    "{'approval-N': {...decision...}}")
        approval_id = pending[0]
    elif approval_id not in pending:
        raise InvalidTransition(f"approval {approval_id} is not pending on this thread")
    return Decision(approval_id=approval_id, decision=decided, payload_sha256=quoted, comment=comment)
