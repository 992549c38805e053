"""An agent definition: markdown with YAML front matter (the seed's format), parsed into a frozen spec."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

import frontmatter
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.errors import AgentDefinitionError
from orchestrator.mcp_config import McpServer, parse_servers

__all__ = ["AgentSpec", "AgentName", "SUB_AGENTS", "LEAD_AGENT", "agent_title"]

AgentName = Literal["ml-engineer", "data-scientist", "devops-engineer", "security-expert", "backend-developer"]
"""The first-party agents; the same string is the node name, the definition's ``name`` and the handoff tool."""
LEAD_AGENT: AgentName = "ml-engineer"
SUB_AGENTS: tuple[AgentName, ...] = ("data-scientist", "devops-engineer", "security-expert", "backend-developer")

_WORDS = {"ml": "ML", "devops": "DevOps", "ai": "AI", "api": "API", "ui": "UI"}
"""How words of agent names are written in titles (``devops-engineer`` -> ``DevOps Engineer``)."""
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def agent_title(name: str) -> str:
    """The human name of an agent: ``devops-engineer`` -> ``DevOps Engineer``."""
    return " ".join(_WORDS.get(word, word.capitalize()) for word in name.split("-"))


class AgentSpec(BaseModel):
    """One agent: who it is, what it may use, and its instructions (the markdown body)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="allow")

    name: str
    description: str
    tools: tuple[str, ...] = ()
    """Capability names, resolved against the tool registry (``Read``, ``Bash``, ``Tavily``...)."""
    color_tag: str | None = Field(default=None, alias="colorTag")
    maturity_level: Literal["experimental", "beta", "stable", "deprecated"] = Field(default="stable",
                                                                                   alias="maturityLevel")
    default_parallelism: int = Field(default=1, ge=1, alias="defaultParallelism")
    tooling_profile: str | None = Field(default=None, alias="toolingProfile")
    model: str | None = None
    """Chat model for this agent only (``provider:model`` or ``builtin``); the settings' model otherwise."""
    mcp_servers: dict[str, McpServer | None] = Field(default_factory=dict, alias="mcpServers")
    """MCP servers whose tools this agent gets (Claude Code's ``mcpServers``); a name alone (None) is the
    settings' server of that name (``orchestrator.mcp_tools``)."""
    instructions: str = ""
    source: str = ""
    """Where the definition was read from."""
    sha256: str = ""
    """SHA-256 of the definition file's bytes: the provenance recorded with every delegation."""

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _servers(cls, value: object) -> dict[str, McpServer | None]:
        return parse_servers(value)

    @property
    def title(self) -> str:
        """Human name: ``ml-engineer`` -> ``ML Engineer``."""
        return agent_title(self.name)

    def section(self, heading: str) -> str:
        """The body of one ``## heading`` section of the instructions ('' when absent)."""
        match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", self.instructions, re.M | re.S)
        return match.group(1).strip() if match else ""

    @classmethod
    def from_text(cls, text: str, *, source: str = "<text>") -> AgentSpec:
        """Parse a definition; errors name the source, the field and what is allowed."""
        try:
            post = frontmatter.loads(text)
        except yaml.YAMLError as exc:
            raise AgentDefinitionError(f"{source}: front matter is not valid YAML: {exc}".splitlines()[0]) from None
        if not post.metadata:
            raise AgentDefinitionError(f"{source}: no YAML front matter; start the file with '---', "
                                       "then 'name:', 'description:', 'tools: [...]', then '---'")
        meta = dict(post.metadata)
        name = meta.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise AgentDefinitionError(f"{source}: field 'name' must be lowercase words joined by '-', "
                                       f"e.g. 'data-scientist'; got {name!r}")
        tools = meta.get("tools", [])
        if isinstance(tools, str):
            tools = [part.strip() for part in tools.split(",") if part.strip()]
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise AgentDefinitionError(f"{source}: field 'tools' must be a list of tool names, got {tools!r}")
        meta["tools"] = tuple(tools)
        try:
            return cls(**meta, instructions=post.content.strip(), source=source,
                       sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise AgentDefinitionError(f"{source}: field {field!r}: {first['msg']}") from None

    @classmethod
    def from_file(cls, path: Path) -> AgentSpec:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AgentDefinitionError(f"{path}: cannot be read: {exc}") from None
        return cls.from_text(text, source=str(path))
