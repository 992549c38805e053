"""Policy logic: allowlists, production-data detection, canonical digests and call fingerprints."""

from __future__ import annotations

import pytest

from orchestrator.config import DEFAULT_PRODUCTION_PATTERNS
from orchestrator.errors import ToolDenied
from tools.policy import call_fingerprint, check_allowed, digest, production_targets


def test_check_allowed_names_the_agents_tools() -> None:
    check_allowed("read_file", ["read_file", "bash"])
    with pytest.raises(ToolDenied, match=r"'web_search' is not allowed for this agent; its tools are: bash, read_file"):
        check_allowed("web_search", ["read_file", "bash"])


@pytest.mark.parametrize(("tool", "args", "expected"), [
    ("read_file", {"path": "data/prod/customers.csv"}, ["data/prod/customers.csv"]),
    ("read_file", {"path": "prod/customers.csv"}, ["prod/customers.csv"]),
    ("list_files", {"path": "data/production"}, ["data/production"]),
    ("read_file", {"path": "./config/db.prod.yaml"}, ["./config/db.prod.yaml"]),
    ("read_file", {"path": "data/PROD/x.csv"}, ["data/PROD/x.csv"]),
    ("read_file", {"path": "data/products.csv"}, []),
    ("bash", {"command": "python score.py --input=data/prod/x.csv > out.csv"}, ["data/prod/x.csv"]),
    ("bash", {"command": "aws s3 cp s3://prod-bucket/scores.parquet ."}, ["s3://prod-bucket/scores.parquet"]),
    ("bash", {"command": "cat data/x.csv>/mnt/production/x.csv"}, ["/mnt/production/x.csv"]),
    ("bash", {"command": "psql postgresql://app@db-prod-1/app -c 'select 1'"}, ["postgresql://app@db-prod-1/app"]),
    ("bash", {"command": "echo 'unbalanced > prod/x"}, ["prod/x"]),
    ("bash", {"command": "ls data && pytest -q"}, []),
    ("run_tests", {"path": "tests", "extra_args": "--data-dir=prod/snapshots"}, ["prod/snapshots"]),
    ("write_file", {"path": "src/load.py", "content": "open('prod/x.csv')"}, []),
    ("task_create", {"title": "look at prod/ data", "links": ["prod/readme.md"]}, ["prod/readme.md"]),
    ("web_search", {"query": "prod/ layout conventions"}, []),
], ids=lambda v: None if isinstance(v, (dict, list)) else v)
def test_production_targets(tool: str, args: dict, expected: list[str]) -> None:
    assert production_targets(tool, args, DEFAULT_PRODUCTION_PATTERNS) == expected


def test_production_targets_with_custom_patterns() -> None:
    assert production_targets("read_file", {"path": "warehouse/live.csv"}, ["warehouse/*"]) == ["warehouse/live.csv"]
    assert production_targets("read_file", {"path": "warehouse/live.csv"}, []) == []


def test_digest_is_canonical() -> None:
    assert digest({"b": 1, "a": [1, "é"]}) == digest({"a": [1, "é"], "b": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert len(digest("text")) == 64


def test_call_fingerprint_binds_tool_and_exact_args() -> None:
    base = call_fingerprint("bash", {"command": "cat prod/x"})
    assert base == call_fingerprint("bash", {"command": "cat prod/x", "ctx": object()})
    assert base != call_fingerprint("bash", {"command": "cat prod/y"})
    assert base != call_fingerprint("read_file", {"command": "cat prod/x"})
