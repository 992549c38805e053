"""The demo workspace: the shift is strong where injected, absent elsewhere, and never written down."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tools.ml.demo import build_demo_workspace
from tools.ml.drift import psi


@pytest.mark.parametrize("seed", [7, 11, 23], ids=lambda s: f"seed{s}")
def test_only_injected_features_drift(tmp_path: Path, seed: int) -> None:
    info = build_demo_workspace(tmp_path, seed=seed)
    ref, cur = pd.read_csv(tmp_path / "data/reference.csv"), pd.read_csv(tmp_path / "data/current.csv")
    values = {f: psi(ref[f].to_numpy(float), cur[f].to_numpy(float)) for f in info.features}
    assert len(info.injected_shift) == 3
    assert all(values[f] > 0.2 for f in info.injected_shift)
    assert max(v for f, v in values.items() if f not in info.injected_shift) < 0.1


def test_without_shift_no_feature_moves(tmp_path: Path) -> None:
    info = build_demo_workspace(tmp_path, shift=False)
    ref, cur = pd.read_csv(tmp_path / "data/reference.csv"), pd.read_csv(tmp_path / "data/current.csv")
    assert info.injected_shift == []
    assert max(psi(ref[f].to_numpy(float), cur[f].to_numpy(float)) for f in info.features) < 0.1


def test_the_answer_is_not_in_the_workspace(tmp_path: Path) -> None:
    info = build_demo_workspace(tmp_path, segment=True)
    texts = [p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".joblib"]
    assert not any("injected" in t or "shift" in t for t in texts)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(info.files)
    assert "site" in pd.read_csv(tmp_path / "data/current.csv", nrows=1).columns
