"""Redaction: every kind of secret is replaced by its marker; ordinary text is left alone."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from tools.redaction import RedactingFilter, redact, redact_obj

_PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\nabcd==\n-----END RSA PRIVATE KEY-----"
_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(("text", "secret", "kind"), [
    ("key sk-abcdefghijklmnopqrstuvwx1234 here", "sk-abcdefghijklmnopqrstuvwx1234", "openai_key"),
    ("sk-proj-AbCdEfGhIjKlMnOpQrStUv_12", "sk-proj-AbCdEfGhIjKlMnOpQrStUv_12", "openai_key"),
    ("ANTHROPIC=sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "anthropic_key"),
    ("tvly-dev-AbCdEf1234567890", "tvly-dev-AbCdEf1234567890", "tavily_key"),
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
    ("ghp_" + "a1B2" * 9, "ghp_" + "a1B2" * 9, "github_token"),
    ("slack xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF", "slack_token"),
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl", "bearer_token"),
    (f"token {_JWT}", _JWT, "jwt"),
    (f"before\n{_PEM}\nafter", "MIIEowIBAAKCAQEA1234", "private_key"),
    ("postgresql://admin:hunter2@db.internal:5432/app", "hunter2", "url_credentials"),
    ("api_key = 'abc123secretvalue'", "abc123secretvalue", "secret"),
    ('{"password": "correct horse"}', "correct", "secret"),
    ("export DB_PASSWORD=s3cr3tpass", "s3cr3tpass", "secret"),
    ("client_secret: Zm9vYmFyYmF6", "Zm9vYmFyYmF6", "secret"),
    ("accessToken=abcdef123456", "abcdef123456", "secret"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 16 else None)
def test_secrets_are_redacted(text: str, secret: str, kind: str) -> None:
    out = redact(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out


@pytest.mark.parametrize("text", [
    "author=Alice max_tokens=1000 tokenizer=bpe",
    "token: str = Field(...)",
    "api_key=settings.tavily_api_key",
    "password=None",
    "the skeleton is sk-short",
    "https://example.org/path?q=1",
    "AUC 0.93, precision 0.88",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_pem_block_keeps_surrounding_lines() -> None:
    assert redact(f"before\n{_PEM}\nafter") == "before\n[REDACTED:private_key]\nafter"


def test_url_keeps_host() -> None:
    assert redact("redis://u:p4ss@cache:6379/0") == "redis://[REDACTED:url_credentials]@cache:6379/0"


def test_redact_obj_recurses_and_blanks_secret_keys() -> None:
    obj = {"password": "pw", "api_key": SecretStr("x"), "author": "Al", "max_tokens": 5,
           "nested": [{"token": "abc"}, ("sk-ant-aaaaaaaaaaaaaaaaaaaaaa", 3)], "cmd": "curl -H 'Authorization: Bearer abcdefghij'"}
    assert redact_obj(obj) == {
        "password": "[REDACTED:secret]", "api_key": "[REDACTED:secret]", "author": "Al", "max_tokens": 5,
        "nested": [{"token": "[REDACTED:secret]"}, ("[REDACTED:anthropic_key]", 3)],
        "cmd": "curl -H 'Authorization: Bearer [REDACTED:bearer_token]'",
    }
    assert obj["password"] == "pw"  # a copy, not in place


def test_logging_filter_redacts_message_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.redaction")
    handler_filter = RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="tests.redaction"):
            logger.info("calling with key %s", "sk-abcdefghijklmnopqrstuvwx1234")
            try:
                raise RuntimeError("bad password=hunter22")
            except RuntimeError:
                logger.exception("failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "sk-abc" not in caplog.text and "hunter22" not in caplog.text
    assert "[REDACTED:openai_key]" in caplog.text and "password=[REDACTED:secret]" in caplog.text
