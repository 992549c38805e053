"""Requests carrying text no database can store are refused (422) before any handler runs.

PostgreSQL refuses NUL (U+0000) in text columns and a lone surrogate (U+D800..U+DFFF) cannot be encoded as
UTF-8 by any driver: without this check such input reaches the database and comes back as a 500, or, on
SQLite, is stored and breaks whatever reads it later. Every way in is checked in one place: the path, the
query string, the headers, a JSON body (keys and values, however deep) and a form's text fields.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from orchestrator.errors import InputError

__all__ = ["refuse_unstorable", "unstorable"]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# In Python a surrogate *pair* from JSON is one code point above U+FFFF: any U+D800..U+DFFF left is unpaired.


def unstorable(value: str) -> bool:
    """True when ``value`` holds a NUL or an unpaired surrogate."""
    return _UNSTORABLE.search(value) is not None


def _in_json(value: Any, where: str) -> str | None:
    """The place of the first unstorable string in a JSON value (``body.a.b[2]``), or None."""
    if isinstance(value, str):
        return where if unstorable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if unstorable(key):
                return f"a key of {where}"
            if (found := _in_json(item, f"{where}.{key}")) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _in_json(item, f"{where}[{index}]")) is not None:
                return found
    return None


async def _first_unstorable(request: Request) -> str | None:
    if unstorable(request.scope.get("path", "")):
        return "the URL path"
    for name, value in request.query_params.multi_items():
        if unstorable(name) or unstorable(value):
            return f"query parameter {name!r}"
    for name, value in request.headers.items():
        if "\x00" in value:  # headers arrive as Latin-1: NUL is the only character that cannot be stored
            return f"header {name!r}"
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = await request.json()  # FastAPI has read the body already: this parses the cached bytes
        except ValueError:
            return None  # not JSON: the route's own validation says so
        return _in_json(body, "body")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()  # already parsed for the route: the same object
        for name, value in form.multi_items():
            if unstorable(name) or (isinstance(value, str) and unstorable(value)):
                return f"form field {name!r}"
    return None


async def refuse_unstorable(request: Request) -> None:
    """Refuse the request (422) when any part of it holds text no database can store."""
    where = await _first_unstorable(request)
    if where is not None:
        raise InputError(f"{where} contains a NUL byte or an unpaired surrogate (\\ud800-\\udfff), which cannot be "
                         "stored; remove it and send the request again")
