"""A lease held by a zombie process (dead, not yet reaped by its parent) is recognised as abandoned at once."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.models import Mission, utcnow
from orchestrator.runner import Runner
from tests.support.fake_chat import Scripts
from tests.support.mission_scripts import each_step_answered
from tests.support.missions import MISSION_TEXT


@pytest.fixture
def zombie() -> Iterator[int]:
    """The pid of a child that has exited and that nobody has reaped yet."""
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{proc.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield proc.pid
    proc.wait()


def _held_by(url: str, mission_id: str, owner: str) -> None:
    with session_scope(url) as session:
        session.execute(update(Mission).where(Mission.id == mission_id).values(
            status="running", lease_owner=owner, lease_expires_at=utcnow() + timedelta(minutes=10)))


def test_a_mission_held_by_a_zombie_runs_without_waiting_for_its_lease(tmp_path: Path, db_url: str,
                                                                       workspace: Path, zombie: int) -> None:
    settings = Settings(home=tmp_path / "home", database_url=db_url, _env_file=None)
    with Runner(settings, model_factory=Scripts(each_step_answered()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace, auto_approve_by="demo")
        _held_by(db_url, mission_id, f"{socket.gethostname()}:{zombie}:worker")
        assert runner.run(mission_id) == "completed"


def test_the_worker_pool_frees_a_lease_held_by_a_zombie(tmp_path: Path, sqlite_url: str, workspace: Path,
                                                        zombie: int) -> None:
    from orchestrator.api.workers import reap_dead_leases

    settings = Settings(home=tmp_path / "home", database_url=sqlite_url, _env_file=None)
    with Runner(settings, model_factory=Scripts(each_step_answered()).factory) as runner:
        mission_id = runner.submit(MISSION_TEXT, workspace=workspace)
    _held_by(sqlite_url, mission_id, f"{socket.gethostname()}:{zombie}:worker")
    assert reap_dead_leases(sqlite_url) == [mission_id]
    with session_scope(sqlite_url) as session:
        assert session.scalar(select(Mission.lease_owner).where(Mission.id == mission_id)) is None
