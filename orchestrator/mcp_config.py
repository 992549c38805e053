"""MCP servers as agent definitions and settings declare them, in Claude Code's ``mcpServers`` form.

An entry is a stdio server (``command`` + ``args`` + ``env``) or a streamable-HTTP one (``url`` +
``headers``). ``${VAR}`` in a value is read from the environment when the server is connected, so a key
stays out of the definition, the settings dump and the record. In an agent's front matter an entry may
also be just a name: the server of that name from the settings (``ORCH_MCP_SERVERS``).

This module only describes servers (no ``mcp`` import): settings and agent specs load it at start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.errors import ConfigError

__all__ = ["McpServer", "parse_servers", "DOCS_SERVERS"]

DOCS_SERVERS: tuple[str, ...] = ("Context7", "DeepWiki", "MicrosoftDocs")
"""Capabilities of ``tools:`` that are MCP servers in the agent ecosystem: a configured server of that name
serves them, else the offline docs lookup of the installed packages does."""

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def _expand(value: str, *, where: str) -> str:
    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name, default)
        if found is None:
            raise ConfigError(f"{where} uses ${{{name}}}, which is not set in the environment: set it, or give a "
                              f"default as ${{{name}:-value}}")
        return found

    return _VAR.sub(one, value)


class McpServer(BaseModel):
    """One MCP server: how to start it (stdio) or where to reach it (streamable HTTP)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type: Literal["stdio", "http", "streamable-http", "streamable_http"] | None = None
    """``stdio`` (the default with ``command``) or ``http`` (the default with ``url``)."""
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    """The server process's environment on top of a minimal one (PATH, HOME...): the service's own secrets are
    not passed to it unless named here."""
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)
    """Seconds one call may take (the settings' ``mcp_call_timeout_s`` otherwise)."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either 'command' (a stdio server) or 'url' (a streamable-HTTP server)")
        if self.command is not None and self.type not in (None, "stdio"):
            raise ValueError(f"type {self.type!r} does not go with 'command'; use type 'stdio' or a 'url'")
        if self.url is not None:
            if self.type == "stdio":
                raise ValueError("type 'stdio' needs 'command', not 'url'")
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"url {self.url!r} must start with http:// or https://")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    def connection(self, *, name: str) -> dict[str, Any]:
        """The ``langchain-mcp-adapters`` connection, ``${VAR}`` expanded from the environment now."""
        where = f"MCP server {name!r}"
        if self.command is not None:
            conn: dict[str, Any] = {"transport": "stdio", "command": _expand(self.command, where=where),
                                    "args": [_expand(a, where=where) for a in self.args]}
            if self.env is not None:
                conn["env"] = {k: _expand(v, where=where) for k, v in self.env.items()}
            if self.cwd:
                conn["cwd"] = _expand(self.cwd, where=where)
            return conn
        return {"transport": "streamable_http", "url": _expand(self.url or "", where=where),
                "headers": {k: _expand(v, where=where) for k, v in self.headers.items()}}


def parse_servers(value: Any, *, field: str = "mcpServers") -> dict[str, McpServer | None]:
    """``mcpServers`` as a mapping (name -> entry) or a list (names, or one-entry mappings); a bare name
    (None here) stands for the settings' server of that name."""
    if value is None:
        return {}
    items: list[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = []
        for entry in value:
            if isinstance(entry, str):
                items.append((entry, None))
            elif isinstance(entry, Mapping) and len(entry) == 1:
                items.extend(entry.items())
            else:
                raise ValueError(f"each entry of {field} is a server name or a one-key mapping "
                                 f"'name: {{command: ..., args: [...]}}', got {entry!r}")
    else:
        raise ValueError(f"{field} must be a mapping of server names to servers, or a list, got {value!r}")
    out: dict[str, McpServer | None] = {}
    for name, spec in items:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"MCP server name {name!r} must be letters, digits, '_', '.' or '-'")
        if name in out:
            raise ValueError(f"MCP server {name!r} is declared twice in {field}")
        out[name] = spec if spec is None or isinstance(spec, McpServer) else McpServer.model_validate(spec)
    return out
