"""Load agent definitions: the first-party ones beside this module, then any configured directories."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agents.spec import LEAD_AGENT, SUB_AGENTS, AgentSpec
from orchestrator.errors import AgentDefinitionError, ConfigError

__all__ = ["load_agents", "BUILTIN_DIR"]

BUILTIN_DIR = Path(__file__).parent


def load_agents(extra_dirs: Iterable[Path] = ()) -> dict[str, AgentSpec]:
    """Every agent by name, with tools resolved against the registry; a broken file stops start-up.

    Files in ``extra_dirs`` may add agents or replace first-party ones (same ``name``), which lets a
    team keep its own ``.claude/agents`` folder.
    """
    from tools.registry import tools_for

    agents: dict[str, AgentSpec] = {}
    sources = [BUILTIN_DIR, *extra_dirs]
    for directory in sources:
        directory = Path(directory).expanduser()
        if not directory.is_dir():
            raise AgentDefinitionError(f"agents directory {str(directory)!r} does not exist (ORCH_AGENTS_DIRS)")
        seen_here: dict[str, str] = {}
        for path in sorted(directory.glob("*.md")):
            if path.name.upper() == "README.MD":
                continue
            spec = AgentSpec.from_file(path)
            if spec.name in seen_here:
                raise AgentDefinitionError(f"{path}: name {spec.name!r} is already defined by {seen_here[spec.name]}")
            seen_here[spec.name] = str(path)
            try:
                tools_for(spec.tools, profile=spec.tooling_profile)
            except ConfigError as exc:
                field = "toolingProfile" if "toolingProfile" in str(exc) else "tools"
                raise AgentDefinitionError(f"{path}: field {field!r}: {exc}") from None
            agents[spec.name] = spec
    missing = [name for name in (LEAD_AGENT, *SUB_AGENTS) if name not in agents]
    if missing:
        raise AgentDefinitionError(f"agent definitions missing for {', '.join(missing)} (looked in {sources})")
    return agents
