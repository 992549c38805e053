"""Settings: the one place every knob of the service is read from (``ORCH_`` environment variables)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.mcp_config import McpServer

__all__ = ["Settings", "get_settings", "DEFAULT_PRODUCTION_PATTERNS"]

DEFAULT_PRODUCTION_PATTERNS: tuple[str, ...] = (
    "**/prod/**",
    "prod/**",
    "**/production/**",
    "production/**",
    "*.prod.*",
    "**/*.prod.*",
    "s3://prod*",
    "gs://prod*",
    "postgresql://*prod*",
)


class Settings(BaseSettings):
    """Service configuration, read once from the environment (prefix ``ORCH_``) and an optional ``.env``."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", env_file=".env", extra="ignore")

    home: Path = Path.home() / ".orchestrator"
    """Where the default SQLite database and default workspaces live."""

    database_url: str | None = None
    """SQLAlchemy URL; defaults to a SQLite file under ``home``. PostgreSQL: ``postgresql+psycopg://...``."""

    model: str = "builtin"
    """Chat model for every agent: ``builtin`` (the deterministic planner, no LLM) or ``provider:model``."""

    model_base_url: str | None = None
    """Base URL for OpenAI-compatible or Ollama endpoints."""

    model_api_key: SecretStr | None = None
    """API key passed to the chat model provider, when it needs one."""

    agents_dirs: list[Path] = Field(default_factory=list)
    """Extra directories of agent definition files (e.g. a project's ``.claude/agents``)."""

    workspace_roots: list[Path] = Field(default_factory=list)
    """Directories under which API clients may place mission workspaces (empty: ``home/workspaces``)."""

    production_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_PRODUCTION_PATTERNS))
    """Glob patterns of paths and URLs treated as production data: touching one needs a human approval."""

    max_handoffs: int = 24
    """Handoffs allowed in one mission before it stops with a recorded reason."""

    max_edge_repeats: int = 4
    """Handoffs allowed on the same (from, to, step) edge: more is ping-pong and stops the mission."""

    max_eval_rounds: int = 2
    """Rounds of evaluate -> Data Scientist -> evaluate before escalating to a human."""

    max_compliance_rounds: int = 2
    """Rounds of package while a security finding blocks release, before the mission ends blocked."""

    max_agent_turns: int = 40
    """Model turns one agent may take inside one step or delegation."""

    recursion_limit: int = 80
    """LangGraph super-step limit for one run of the graph."""

    allow_unsandboxed_shell: bool = False
    """Run shell commands without bubblewrap when it is missing (recorded on every call)."""

    shell_timeout_s: float = 120.0
    shell_memory_mb: int = 2048
    shell_max_processes: int = 256
    shell_max_output_bytes: int = 64_000
    shell_tmp_mb: int = 512
    """Size of the sandbox's private ``/tmp`` (a tmpfs, held in the host's memory)."""
    shell_max_file_mb: int = 1024
    """Largest file one sandboxed command may write (``RLIMIT_FSIZE``)."""
    shell_workspace_growth_mb: int = 2048
    """How much one sandboxed command may add to the workspace before it is stopped."""
    max_read_bytes: int = 2_000_000
    max_write_bytes: int = 10_000_000

    tavily_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ORCH_TAVILY_API_KEY", "TAVILY_API_KEY")
    )
    tavily_base_url: str | None = None
    """Override of Tavily's API base URL (tests point it at a local fake server)."""

    mcp_servers: dict[str, McpServer] = Field(default_factory=dict)
    """MCP servers (Claude Code's ``mcpServers`` form, as JSON) whose tools every agent gets; one named like a
    capability (``Context7``, ``DeepWiki``, ``MicrosoftDocs``) serves only the agents whose ``tools:`` name it."""
    mcp_start_timeout_s: float = 30.0
    """How long an MCP server may take to start (stdio) or answer its first request (HTTP)."""
    mcp_call_timeout_s: float = 120.0
    """How long one MCP tool call may take (a server's own ``timeout`` wins)."""

    otel_endpoint: str | None = None
    """OTLP/HTTP endpoint receiving the missions' traces (e.g. ``http://collector:4318/v1/traces``); unset: no
    tracing, at no cost (``orchestrator.telemetry``; needs ``pip install 'ml-orchestrator[otel]'``)."""
    otel_service_name: str = "ml-orchestrator"
    otel_headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Headers sent with each export (e.g. a collector's API key)."""

    price_input_per_mtok: float | None = None
    """Price of a million input tokens of the configured model, to record each delegation's cost."""
    price_output_per_mtok: float | None = None

    host: str = "127.0.0.1"
    port: int = 8700
    dev_no_auth: bool = False
    """Loopback-only development mode without API keys (announced loudly at start-up)."""

    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (e.g. ``["http://localhost:3000"]`` for Agent Chat UI); none by
    default."""

    audit_head_key: SecretStr | None = None
    """Key of the HMAC signing exported audit heads (``audit head``); unset: a random key kept in ``home``."""

    runner_workers: int = 32
    """Missions one process drives at once (``serve``, ``worker``): threads that mostly wait on a model or a
    tool, sharing one compiled graph (``bench/concurrent_missions.py`` measures what one process carries)."""
    lease_seconds: float = 60.0

    queue: Literal["auto", "threads", "procrastinate"] = "auto"
    """What runs the missions: ``auto`` is procrastinate's workers on PostgreSQL (``pip install
    'ml-orchestrator[scale]'``; ``orchestrator.jobs``) and the in-process thread pool on SQLite."""
    worker_heartbeat_s: float = 10.0
    """How often a procrastinate worker records that it is alive."""
    worker_stalled_s: float = 30.0
    """A worker silent for this long is taken for dead: its missions' jobs are replaced by new ones."""
    log_json: bool = False

    @field_validator("max_handoffs", "max_edge_repeats", "max_eval_rounds", "max_compliance_rounds", "max_agent_turns", "recursion_limit")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1, got {value!r}")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or the SQLite file under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'orchestrator.db').resolve()}"

    @property
    def resolved_workspace_roots(self) -> list[Path]:
        roots = self.workspace_roots or [self.home / "workspaces"]
        return [root.expanduser().resolve() for root in roots]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing the environment."""
    return Settings()
