"""Fixtures of the tool tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sibling(tmp_path: Path) -> Path:
    """Another mission's workspace next to ours, holding a secret."""
    other = tmp_path / "other-mission"
    other.mkdir()
    (other / "secret.txt").write_text("other mission's data\n")
    return other
