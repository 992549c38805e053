"""Redaction: secrets replaced by ``[REDACTED:<kind>]`` before text reaches logs, records or a model.

Patterns are deliberately greedy towards safety: a false positive costs a reader some context, a false
negative leaks a credential into an append-only trail.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import SecretStr

__all__ = ["redact", "redact_obj", "RedactingFilter"]


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# (kind, pattern, replacement); order matters: whole blocks and structured forms before generic ones.
_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("private_key", re.compile(
        r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL), ""),
    ("url_credentials", re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s:/@\"']+:[^\s@/\"']+@"), r"\1{m}@"),
    ("bearer_token", re.compile(r"\b(Bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE), r"\1{m}"),
    ("basic_auth", re.compile(r"\b(Basic\s+)[A-Za-z0-9+/]{8,}=*"), r"\1{m}"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"), ""),
    ("anthropic_key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{16,}"), ""),
    ("openai_key", re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{16,}"), ""),
    ("tavily_key", re.compile(r"\btvly-[A-Za-z0-9_\-]{12,}"), ""),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), ""),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), ""),
    ("slack_token", re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), ""),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), ""),
]

# A secret-looking name: a keyword, possibly with a prefix (``OPENAI_API_KEY``, ``apiKey``) or a suffix
# after a separator (``password_file``), but not inside a longer word (``author``, ``max_tokens``).
_SECRET_NAME = (
    r"[A-Za-z0-9_.\-]*?(?:api[_\-]?key|secret|token|passwd|password|pwd|access[_\-]?key|private[_\-]?key|"
    r"credentials?|auth|authorization)(?![A-Za-z])(?:[_.\-][A-Za-z0-9_.\-]*)?"
)
_SECRET_KEY_RE = re.compile(rf"^{_SECRET_NAME}$", re.IGNORECASE)
_ASSIGNMENT_RE = re.compile(
    rf"(?P<name>\b{_SECRET_NAME})(?P<sep>[\"']?\s*(?::|=|:=)\s*)(?P<quote>[\"']?)(?P<value>[^\s\"',;&)}}\]]+)",
    re.IGNORECASE,
)
_NOT_SECRETS = {"none", "null", "nil", "true", "false", "bearer", "basic", "str", "string", "int", "bool",
                "optional", "secretstr", "required", "undefined", "env", "self"}


def _assignment(match: re.Match[str]) -> str:
    value = match.group("value")
    if (len(value) < 4 or value.lower() in _NOT_SECRETS or value.startswith(("[REDACTED", "$", "<", "{", "%"))
            or value.lower().startswith(("os.environ", "settings.", "getenv", "secretstr", "os.getenv"))):
        return match.group(0)
    return f"{match.group('name')}{match.group('sep')}{match.group('quote')}{_marker('secret')}"


def redact(text: str) -> str:
    """``text`` with every recognised secret replaced by ``[REDACTED:<kind>]``."""
    if not text:
        return text
    for kind, pattern, replacement in _RULES:
        marker = _marker(kind)
        text = pattern.sub(replacement.replace("{m}", marker) if replacement else marker, text)
    return _ASSIGNMENT_RE.sub(_assignment, text)


def redact_obj(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples, strings) with secrets redacted; values under secret-named keys
    are replaced whole."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, SecretStr):
        return _marker("secret")
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if isinstance(key, str) and _SECRET_KEY_RE.match(key) and isinstance(value, (str, SecretStr)) and value:
                out[key] = _marker("secret")
            else:
                out[key] = redact_obj(value)
        return out
    if isinstance(obj, list):
        return [redact_obj(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(item) for item in obj)
    return obj


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message and any traceback of every record it sees.

    Attach it to handlers (``handler.addFilter(RedactingFilter())``) so records from every logger pass it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
