"""Load and claims: 50 concurrent submissions all complete once; concurrent claimers never share a mission."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.api.workers import claim_one
from orchestrator.db import session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.models import Event, Mission, Step
from tests.api.conftest import auth
from tests.support.mission_scripts import each_step_answered


def test_fifty_concurrent_missions_complete(make_client, keys: dict[str, str], api_settings) -> None:  # noqa: ANN001
    client: TestClient = make_client(each_step_answered, settings=api_settings.model_copy(update={"runner_workers": 4}))
    headers = auth(keys["submitter"])

    def submit(i: int) -> str:
        response = client.post("/api/v1/missions", json={"text": f"Mission: load {i}", "workspace": "ws"},
                               headers={**headers, "Idempotency-Key": f"load-{i}"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(submit, range(50)))
    assert len(set(ids)) == 50

    def wait_all(status: str) -> None:
        deadline = time.monotonic() + 90
        while True:
            page = client.get("/api/v1/missions", params={"status": status, "limit": 200}, headers=headers).json()
            if len(page["items"]) == 50:
                return
            assert time.monotonic() < deadline, f"{len(page['items'])} of 50 missions {status}"
            time.sleep(0.2)

    wait_all("waiting_approval")
    approvals = client.get("/api/v1/approvals", headers=auth(keys["approver"])).json()
    assert len(approvals) == 50

    def approve(approval: dict) -> int:
        return client.post(f"/api/v1/approvals/{approval['id']}/decision", headers=auth(keys["approver"]),
                           json={"decision": "approve", "payload_sha256": approval["payload_sha256"]}).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(approve, approvals)) == {200}
    wait_all("completed")
    with session_scope(api_settings.resolved_database_url) as session:
        assert session.scalar(select(func.count()).select_from(Mission)) == 50
        queued = session.execute(select(Event.mission_id, func.count()).where(Event.kind == "mission.queued")
                                 .group_by(Event.mission_id)).all()
        assert sorted(n for _, n in queued) == [1] * 50
        assert session.scalar(select(func.max(Step.rounds))) == 1  # no step ran twice


def _claimer(url: str, name: str, out: multiprocessing.Queue, ready: multiprocessing.Queue, go) -> None:  # noqa: ANN001
    from concurrent.futures import ThreadPoolExecutor as Pool

    from orchestrator.db import engine_for

    engine_for(url).connect().close()  # connect before the start line, so both race from the same moment
    ready.put(name)
    go.wait(30)

    def loop(i: int) -> list[str]:
        got = []
        while (mission_id := claim_one(url, worker=f"{name}-{i}", lease_s=60)) is not None:
            got.append(mission_id)
        return got

    with Pool(4) as pool:
        out.put([m for ids in pool.map(loop, range(4)) for m in ids])


@pytest.mark.postgres
def test_two_processes_never_claim_the_same_mission(pg_url: str, tmp_path) -> None:  # noqa: ANN001
    with session_scope(pg_url) as session:
        session.execute(Mission.__table__.update().where(Mission.status.in_(("queued", "running")))
                        .values(status="cancelled"))
        created = {create_mission(session, text="Mission: claim", spec={"objective": "claim"},
                                  workspace=str(tmp_path)).id for _ in range(200)}
    ctx = multiprocessing.get_context("spawn")
    out, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_claimer, args=(pg_url, f"p{n}", out, ready, go)) for n in range(2)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=60)
    go.set()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    claimed = [m for ids in results for m in ids]
    assert len(claimed) == len(set(claimed)) == 200
    assert set(claimed) == created
    assert all(results)  # both processes got work
