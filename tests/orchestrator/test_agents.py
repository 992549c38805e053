"""Agent definitions are data: the shipped ones load; a broken file stops start-up naming file and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agents.loader import BUILTIN_DIR, load_agents
from agents.spec import SUB_AGENTS
from orchestrator.errors import AgentDefinitionError

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "ml-engineer.md"


def test_shipped_agents_load_with_hashes_and_tools() -> None:
    agents = load_agents()
    assert set(agents) == {"ml-engineer", *SUB_AGENTS}
    lead = agents["ml-engineer"]
    assert lead.tools == ("Read", "Write", "Edit", "Bash", "RunTests", "Task", "Context7", "MicrosoftDocs",
                          "DeepWiki", "Tavily")
    assert lead.sha256 == hashlib.sha256((BUILTIN_DIR / "ml-engineer.md").read_bytes()).hexdigest()
    assert lead.section("Failure Modes & Fallbacks").startswith("- **Model underperforms in prod:**")
    for name in SUB_AGENTS:
        for heading in ("Mission", "Success Criteria", "Operating Procedure", "Tooling Rules",
                        "Deliverables & Reporting", "Failure Modes & Fallbacks"):
            assert agents[name].section(heading), f"{name} lacks {heading}"


@pytest.mark.skipif(not SEED.exists(), reason="the shared seed is only beside a checkout")
def test_ml_engineer_is_the_seed_verbatim() -> None:
    assert (BUILTIN_DIR / "ml-engineer.md").read_bytes() == SEED.read_bytes()


@pytest.mark.parametrize(("text", "message"), [
    ("no front matter here", "no YAML front matter"),
    ("---\nname: x y\ndescription: d\n---\nbody", "field 'name' must be lowercase words"),
    ("---\nname: helper\ndescription: d\ntools: [Read, Teleport]\n---\nbody", "unknown tool 'Teleport'"),
    ("---\nname: helper\ndescription: d\ntoolingProfile: wizard\n---\nbody", "unknown toolingProfile 'wizard'"),
    ("---\nname: helper\ntools: [Read]\n---\nbody", "field 'description'"),
    ("---\nname: [unclosed\n---\nbody", "not valid YAML"),
], ids=["no-front-matter", "bad-name", "unknown-tool", "unknown-profile", "missing-description", "bad-yaml"])
def test_broken_user_agent_file_is_refused_with_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "helper.md").write_text(text)
    with pytest.raises(AgentDefinitionError, match=message) as info:
        load_agents([tmp_path])
    assert str(tmp_path / "helper.md") in str(info.value)


def test_user_directory_adds_and_overrides_agents(tmp_path: Path) -> None:
    (tmp_path / "data-scientist.md").write_text(
        "---\nname: data-scientist\ndescription: Our own data scientist.\ntools: [Read]\nmodel: builtin\n---\nBe brief.")
    (tmp_path / "reviewer.md").write_text("---\nname: reviewer\ndescription: Reviews.\ntools: [Read]\n---\nReview.")
    agents = load_agents([tmp_path])
    assert agents["data-scientist"].description == "Our own data scientist."
    assert agents["data-scientist"].model == "builtin"
    assert "reviewer" in agents


def test_missing_agents_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AgentDefinitionError, match="does not exist"):
        load_agents([tmp_path / "nope"])
