"""A secret planted in a file, in shell output and in a search result never reaches the model's messages,
the logs, the checkpoint, the journal or the audit trail."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import Event, ModelTurn, ToolCall
from orchestrator.runner import Runner
from tests.support.fake_chat import Scripts, ai, call
from tests.support.fake_tavily import fake_tavily
from tests.support.missions import MISSION_TEXT

FILE_SECRET = "sk-proj-Zq8vN3xK7tR2mW9pL4cY6bH1dF5gJ0sA"
SHELL_SECRET = "ghp_4fT9kLm2Qx7Rz1Vb8Nc3Wd6Ye5Ua0Sp2Ko9Ij"
SEARCH_SECRET = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def tavily_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    leaked = [{"title": "leaked", "url": "https://example.org", "score": 0.9, "raw_content": None,
               "content": f"config: aws_access_key_id = {SEARCH_SECRET}"}]
    with fake_tavily(lambda body: leaked) as server:
        yield server.url


def test_secrets_are_redacted_everywhere(tmp_path: Path, workspace: Path, tavily_url: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    (workspace / "config.env").write_text(f"OPENAI_API_KEY={FILE_SECRET}\n")
    (workspace / "token.txt").write_text(SHELL_SECRET + "\n")
    db = tmp_path / "orchestrator.db"
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{db}", tavily_api_key=SecretStr("tvly-test-12345"),
                        tavily_base_url=tavily_url, allow_unsandboxed_shell=True, _env_file=None)
    seen: list[str] = []
    lead = [ai("", call("read_file", "r-1", path="config.env"), call("bash", "r-2", command="cat token.txt"),
                call("web_search", "r-3", query="sklearn drift")),
            ai("Read the config, the token and the docs."),
            *[ai(f"{step} done") for step in ("design", "implement", "evaluate", "package", "release", "report")]]
    scripts = Scripts({"ml-engineer": lead})

    def factory(agent, run):  # noqa: ANN001, ANN202 - record every conversation the model is shown
        model = scripts.factory(agent, run)
        original = type(model)._generate

        def spy(self, messages, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            seen.extend(str(m.content) for m in messages)
            return original(self, messages, *args, **kwargs)

        model.__dict__["_generate"] = spy.__get__(model)  # bound per instance, the class stays untouched
        return model

    caplog.set_level(logging.DEBUG)
    with Runner(settings, model_factory=factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="test")
        assert runner.run(mission_id) == "completed"

    url = settings.resolved_database_url
    with session_scope(url) as session:
        results = {r.call_id: r.result for r in session.scalars(select(ToolCall).where(ToolCall.mission_id == mission_id))}
        events = json.dumps([e.payload for e in session.scalars(select(Event).where(Event.mission_id == mission_id))])
        turns = json.dumps([t.message for t in session.scalars(select(ModelTurn))])
    assert "[REDACTED" in results["r-1"] and "[REDACTED" in results["r-2"] and "[REDACTED" in results["r-3"]
    conn = sqlite3.connect(db)
    checkpoint_bytes = b"".join(bytes(row[0] or b"") for row in conn.execute("SELECT checkpoint FROM checkpoints"))
    checkpoint_bytes += b"".join(bytes(row[0] or b"") for row in conn.execute("SELECT value FROM writes"))
    conn.close()
    for secret in (FILE_SECRET, SHELL_SECRET, SEARCH_SECRET):
        for where, text in (("tool results", json.dumps(results)), ("audit events", events), ("journal", turns),
                            ("model messages", "\n".join(seen)), ("logs", caplog.text)):
            assert secret not in text, f"{secret} leaked into {where}"
        assert secret.encode() not in checkpoint_bytes, f"{secret} leaked into the checkpoint"
    assert any("config.env" in text for text in seen)  # the model did get the (redacted) file
