"""The anchored audit chain: every tampering of the trail, an approval or the mission row is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from orchestrator.audit import SignedHead, head_key, signed_head, verify_chain
from orchestrator.db import session_scope
from orchestrator.db.approvals import decide_approval, request_approval
from orchestrator.db.missions import create_mission, end_mission, finish_step, mark_running, start_step
from orchestrator.db.models import Approval, Event, Mission
from orchestrator.errors import InputError
from tests.support.missions import MISSION_TEXT

KEY = b"k" * 32


def _recorded_mission(url: str, workspace: Path) -> str:
    """A mission recorded by the repository functions a run uses: steps, a decided gate, a terminal status."""
    with session_scope(url) as session:
        mission_id = create_mission(session, text=MISSION_TEXT, spec={"objective": "audit"},
                                    workspace=str(workspace), owner="alice").id
    with session_scope(url) as session:
        mark_running(session, mission_id=mission_id, was="queued", actor="orchestrator")
        for name in ("align", "design", "implement"):
            round_ = start_step(session, mission_id=mission_id, name=name, actor="ml-engineer")
            finish_step(session, mission_id=mission_id, name=name, round_=round_, actor="ml-engineer", summary=name)
        request_approval(session, mission_id=mission_id, key="release", kind="release", step="release",
                         agent="ml-engineer", question="Ship it?", payload={"plan": "canary"})
    with session_scope(url) as session:
        decide_approval(session, mission_id=mission_id, decision="approved", actor="bob", comment="ok")
    with session_scope(url) as session:
        end_mission(session, mission_id=mission_id, status="completed", actor="orchestrator")
    return mission_id


def _events(url: str, mission_id: str) -> list[tuple[int, int]]:
    """(seq, row id) of every event, in seq order."""
    with session_scope(url) as session:
        return [tuple(r) for r in session.execute(select(Event.seq, Event.id).where(Event.mission_id == mission_id)
                                                  .order_by(Event.seq))]


def _verify(url: str, mission_id: str, head: SignedHead | None = None):
    with session_scope(url) as session:
        return verify_chain(session, mission_id, head=head)


def _edit(session: Session, mission_id: str, seq: int) -> None:
    row = session.scalar(select(Event).where(Event.mission_id == mission_id, Event.seq == seq))
    row.payload = {**row.payload, "forged": True}


def _delete(session: Session, mission_id: str, seqs: list[int]) -> None:
    session.execute(delete(Event).where(Event.mission_id == mission_id, Event.seq.in_(seqs)))


def _swap(session: Session, mission_id: str, seq: int) -> None:
    ids = dict(session.execute(select(Event.seq, Event.id).where(Event.mission_id == mission_id,
                                                                  Event.seq.in_([seq, seq + 1]))).all())
    for row_id, new_seq in ((ids[seq], -1), (ids[seq + 1], seq), (ids[seq], seq + 1)):
        session.execute(update(Event).where(Event.id == row_id).values(seq=new_seq))
        session.flush()


Tamper = Callable[[Session, str, int], None]
"""Changes the records of a mission of ``n`` events."""

# (tamper, expected entry as a function of the events' (seq, id) list, first_bad_seq)
MATRIX: dict[str, tuple[Tamper, Callable[[list[tuple[int, int]]], str], Callable[[int], int | None]]] = {
    "edit": (lambda s, m, n: _edit(s, m, 5),
             lambda ev: f"event seq 5 (row id {ev[4][1]})", lambda n: 5),
    "delete-middle": (lambda s, m, n: _delete(s, m, [5]),
                      lambda ev: "event seq 5 (missing)", lambda n: 5),
    "delete-tail": (lambda s, m, n: _delete(s, m, [n]),
                    lambda ev: f"event seq {len(ev)} (missing)", lambda n: n),
    "delete-last-six": (lambda s, m, n: _delete(s, m, list(range(n - 5, n + 1))),
                        lambda ev: f"event seq {len(ev) - 5} (missing)", lambda n: n - 5),
    "delete-all": (lambda s, m, n: _delete(s, m, list(range(1, n + 1))),
                   lambda ev: "event seq 1 (missing)", lambda n: 1),
    "reorder": (lambda s, m, n: _swap(s, m, 5),
                lambda ev: f"event seq 5 (row id {ev[5][1]})", lambda n: 5),
    "edit-approval": (lambda s, m, n: s.execute(update(Approval).where(Approval.mission_id == m)
                                                .values(decided_by="mallory")),
                      lambda ev: "approval", lambda n: None),
    "edit-mission-status": (lambda s, m, n: s.execute(update(Mission).where(Mission.id == m)
                                                      .values(status="failed")),
                            lambda ev: "mission row", lambda n: n),
}


@pytest.mark.parametrize("case", list(MATRIX))
def test_the_tamper_matrix_names_the_first_missing_or_altered_entry(db_url: str, workspace: Path,
                                                                     case: str) -> None:
    mission_id = _recorded_mission(db_url, workspace)
    assert _verify(db_url, mission_id).intact
    events = _events(db_url, mission_id)
    tamper, entry, first_seq = MATRIX[case]
    with session_scope(db_url) as session:
        tamper(session, mission_id, len(events))
    report = _verify(db_url, mission_id)
    assert not report.intact
    assert report.entry.startswith(entry(events)), report.describe()
    if first_seq(len(events)) is not None:
        assert report.first_bad_seq == first_seq(len(events)), report.describe()
    assert report.entry in report.describe()


def test_an_edited_approval_is_named_with_the_event_it_contradicts(db_url: str, workspace: Path) -> None:
    mission_id = _recorded_mission(db_url, workspace)
    with session_scope(db_url) as session:
        approval = session.scalar(select(Approval).where(Approval.mission_id == mission_id))
        approval.decided_by, approval_id = "mallory", approval.id
        decided = session.scalar(select(Event).where(Event.mission_id == mission_id,
                                                     Event.kind == "approval.decided"))
        decided_seq = decided.seq
    report = _verify(db_url, mission_id)
    assert (report.entry, report.first_bad_seq) == (f"approval {approval_id}", decided_seq)
    assert "'mallory'" in report.reason and "'bob'" in report.reason


@pytest.mark.parametrize("column", ["status", "decided_by", "comment"])
def test_a_pending_approval_made_to_look_decided_is_caught(db_url: str, workspace: Path, column: str) -> None:
    with session_scope(db_url) as session:
        mission_id = create_mission(session, text=MISSION_TEXT, spec={}, workspace=str(workspace)).id
        request_approval(session, mission_id=mission_id, key="release", kind="release", step="release",
                         agent="ml-engineer", question="Ship it?", payload={"plan": "canary"})
    with session_scope(db_url) as session:
        values = {"status": "approved", "decided_by": "mallory", "comment": "sure"}
        session.execute(update(Approval).where(Approval.mission_id == mission_id).values({column: values[column]}))
    report = _verify(db_url, mission_id)
    assert not report.intact and report.entry.startswith("approval "), report.describe()


def test_truncation_with_the_mission_row_rewritten_is_caught_by_the_exported_head(db_url: str,
                                                                                workspace: Path) -> None:
    mission_id = _recorded_mission(db_url, workspace)
    with session_scope(db_url) as session:
        kept = signed_head(session, mission_id, key=KEY)
    events = _events(db_url, mission_id)
    with session_scope(db_url) as session:  # an intruder deletes the tail and moves the head on the row back
        _delete(session, mission_id, [len(events)])  # the completed status: the mission looks unfinished
        last = session.scalar(select(Event).where(Event.mission_id == mission_id, Event.seq == len(events) - 1))
        session.execute(update(Mission).where(Mission.id == mission_id)
                        .values(chain_seq=last.seq, chain_head=last.hash, status="running"))
    report = _verify(db_url, mission_id)
    assert report.intact  # the database alone cannot tell: the user's exported head can
    report = _verify(db_url, mission_id, SignedHead.from_json(kept.to_json(), key=KEY))
    assert not report.intact and report.entry == f"event seq {len(events)} (missing)"
    assert "the exported head" in report.reason


def test_a_head_exported_earlier_still_verifies_a_grown_chain(db_url: str, workspace: Path) -> None:
    with session_scope(db_url) as session:
        mission_id = create_mission(session, text=MISSION_TEXT, spec={}, workspace=str(workspace)).id
    with session_scope(db_url) as session:
        kept = signed_head(session, mission_id, key=KEY)
        assert (kept.seq, kept.mission_id) == (1, mission_id)
    with session_scope(db_url) as session:
        mark_running(session, mission_id=mission_id, was="queued", actor="orchestrator")
    assert _verify(db_url, mission_id, kept).intact


def test_an_event_added_beyond_the_anchored_head_is_named(db_url: str, workspace: Path) -> None:
    from orchestrator.audit import event_hash
    from orchestrator.db.models import utcnow

    mission_id = _recorded_mission(db_url, workspace)
    with session_scope(db_url) as session:
        seq, head = session.execute(select(Mission.chain_seq, Mission.chain_head)
                                    .where(Mission.id == mission_id)).one()
        values = {"mission_id": mission_id, "seq": seq + 1, "ts": utcnow(), "kind": "message", "actor": "mallory",
                  "step": None, "delegation_id": None, "payload": {}, "prev_hash": head}
        session.add(Event(**values, hash=event_hash(**values)))
    report = _verify(db_url, mission_id)
    assert not report.intact and report.first_bad_seq == seq + 1 and "beyond the head" in report.reason


@pytest.mark.parametrize("forge", ["seq", "hash", "signature", "not-json"])
def test_a_forged_head_is_refused(forge: str) -> None:
    head = SignedHead("abc", 3, "f" * 64, SignedHead._mac(KEY, "abc", 3, "f" * 64))
    data = json.loads(head.to_json())
    if forge == "not-json":
        text = "{seq: 3"
    else:
        data[forge] = 2 if forge == "seq" else "0" * 64
        text = json.dumps(data)
    assert SignedHead.from_json(head.to_json(), key=KEY) == head
    with pytest.raises(InputError, match="signature does not match|not an exported audit head"):
        SignedHead.from_json(text, key=KEY)


def test_the_head_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = head_key(configured=None, home=tmp_path / "home")
    assert head_key(configured=None, home=tmp_path / "home") == key and len(key) == 64
    assert (tmp_path / "home" / "audit-head.key").stat().st_mode & 0o077 == 0
    assert head_key(configured="set", home=tmp_path / "home") == b"set"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_the_cli_exports_a_signed_head_and_verifies_against_it(tmp_path: Path, workspace: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{(home / 'orchestrator.db').resolve()}"
    home.mkdir()
    from orchestrator.db.schema import upgrade

    upgrade(url)
    mission_id = _recorded_mission(url, workspace)
    exported = _cli(home, "audit", "head", mission_id)
    assert exported.returncode == 0, exported.stderr
    head = json.loads(exported.stdout)
    assert set(head) == {"mission_id", "seq", "hash", "signature"} and head["mission_id"] == mission_id
    head_file = tmp_path / "head.json"
    head_file.write_text(exported.stdout)
    ok = _cli(home, "audit", "verify", mission_id, "--head", str(head_file))
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stderr

    with session_scope(url) as session:  # the tail deleted, the head on the row moved back to match
        _delete(session, mission_id, [head["seq"]])
        last = session.scalar(select(Event.hash).where(Event.mission_id == mission_id, Event.seq == head["seq"] - 1))
        session.execute(update(Mission).where(Mission.id == mission_id)
                        .values(chain_seq=head["seq"] - 1, chain_head=last, status="running"))
    assert _cli(home, "audit", "verify", mission_id).returncode == 0  # the database alone cannot tell
    broken = _cli(home, "audit", "verify", mission_id, "--head", str(head_file))
    assert broken.returncode == 1 and f"event seq {head['seq']} (missing)" in broken.stdout

    with session_scope(url) as session:
        session.execute(update(Mission).where(Mission.id == mission_id).values(chain_seq=head["seq"]))
    refused = _cli(home, "audit", "head", mission_id)
    assert refused.returncode == 1 and not refused.stdout and "BROKEN" in refused.stderr

    head_file.write_text(json.dumps({**head, "seq": head["seq"] - 1}))
    forged = _cli(home, "audit", "verify", mission_id, "--head", str(head_file))
    assert forged.returncode == 2 and "signature does not match" in forged.stderr
    assert "Traceback" not in forged.stderr
