"""Missions: submit (JSON or an uploaded workspace archive), list with filters and cursors, read one."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile, status
from sqlalchemy import Engine, Row, Select, String, bindparam, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.api.archive import ArchiveLimits, read_capped, unpacked
from orchestrator.api.deps import OWN_MISSIONS_ONLY, Creator, Reader, Service, ServiceDep, ensure_visible, run_read, run_write
from orchestrator.api.keys import Caller
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routers.workspaces import resolve_workspace
from orchestrator.api.schemas import MissionCreate, MissionPage, MissionPublic, MissionSummary
from orchestrator.db import engine_for, session_scope
from orchestrator.db.direct import reading
from orchestrator.db.models import Delegation, Mission
from orchestrator.errors import InputError, InvalidTransition
from orchestrator.views import iso, mission_row, mission_view

__all__ = ["router", "mission_summary", "page_query"]

router = APIRouter(prefix="/missions", tags=["missions"], responses=PROBLEM_RESPONSES)
LIMITS = ArchiveLimits()
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="Same key and body: the same mission, not a new one.")]


def mission_summary(mission: Mission) -> MissionSummary:
    return MissionSummary(id=mission.id, status=mission.status, current_step=mission.current_step,
                          owner=mission.owner, workspace=mission.workspace,
                          objective=str((mission.spec or {}).get("objective", "")),
                          created_at=iso(mission.created_at), error=mission.error)


def _replayed(session: Session, key: str, request_sha256: str) -> Mission | None:
    existing = session.scalar(select(Mission).where(Mission.idempotency_key == key))
    if existing is not None and existing.request_sha256 != request_sha256:
        raise InvalidTransition(f"Idempotency-Key {key!r} was already used with a different request")
    return existing


@router.post("", response_model=MissionSummary, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": MissionSummary, "description": "Replayed: the mission this key created."}})
async def create_mission(body: MissionCreate, service: ServiceDep, caller: Creator,
                         idempotency_key: IdempotencyKey = None) -> Response:
    """Queue a mission on a workspace under the configured roots; workers pick it up."""
    # The whole create in one call (on the loop when SQLite is free to write: see run_write).
    replayed, summary = await run_write(service, _create, service, caller, body, idempotency_key)
    if replayed:
        return Response(summary.model_dump_json(), status_code=status.HTTP_200_OK, media_type="application/json")
    if service.pool is not None:
        service.pool.wake()
    return Response(summary.model_dump_json(), status_code=status.HTTP_201_CREATED, media_type="application/json",
                    headers={"Location": f"/api/v1/missions/{summary.id}"})


def _create(service: Service, caller: Caller, body: MissionCreate,
            idempotency_key: str | None) -> tuple[bool, MissionSummary]:
    """Create the mission, or find the one this idempotency key made: (replayed, its summary)."""
    workspace = resolve_workspace(service.settings, body.workspace)
    digest = hashlib.sha256(json.dumps({"text": body.text, "workspace": str(workspace), "owner": caller.name},
                                       sort_keys=True).encode()).hexdigest()
    if idempotency_key:
        with session_scope(service.url) as session:
            if (existing := _replayed(session, idempotency_key, digest)) is not None:
                return True, mission_summary(existing)
    try:
        created = service.runner.create(body.text, workspace=workspace, owner=caller.name,
                                        idempotency_key=idempotency_key, request_sha256=digest)
    except IntegrityError:  # a concurrent request with the same key won the race
        with session_scope(service.url) as session:
            existing = _replayed(session, idempotency_key or "", digest)
            if existing is None:
                raise
            return True, mission_summary(existing)
    # The answer describes the mission as created (queued), whatever a worker does with it a moment later.
    return False, mission_summary(created)


@router.post("/upload", response_model=MissionSummary, status_code=status.HTTP_201_CREATED)
def create_mission_from_archive(text: Annotated[str, Form(min_length=1, max_length=20_000)],
                                archive: Annotated[UploadFile, File(description=".zip or .tar.gz workspace")],
                                response: Response, service: ServiceDep, caller: Creator) -> MissionSummary:
    """Queue a mission on a workspace unpacked from an uploaded archive (size- and count-capped)."""
    data = read_capped(archive.file, LIMITS.max_upload_bytes)
    root = service.settings.resolved_workspace_roots[0]
    target = root / f"upload-{uuid.uuid4().hex[:12]}"
    with unpacked(data, archive.filename or "", target, LIMITS):  # removed again if the mission is refused
        created = service.runner.create(text, workspace=target, owner=caller.name)
    summary = mission_summary(created)
    if service.pool is not None:
        service.pool.wake()
    response.headers["Location"] = f"/api/v1/missions/{created.id}"
    return summary


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, mission_id = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=="))
        return _utc(datetime.fromisoformat(created)), str(mission_id)
    except (ValueError, TypeError):
        raise InputError(f"cursor {cursor!r} is not one this API returned") from None


def _encode_cursor(mission: Mission | Row) -> str:
    raw = json.dumps([iso(mission.created_at), mission.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _utc(value: datetime) -> datetime:
    """The same instant in UTC: SQLite compares stored times as text, so every bound must be UTC like them."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_SUMMARY_COLUMNS = (Mission.id, Mission.status, Mission.current_step, Mission.owner, Mission.workspace,
                    Mission.spec["objective"].as_string().label("objective"), Mission.created_at, Mission.error)
"""What a list line shows: the objective is read out of the spec by the database (a spec holds the whole
mission text, which a page of twenty would otherwise decode twenty times)."""


def _line(row: Row) -> dict[str, object]:
    """A list line from a row of ``_SUMMARY_COLUMNS``: the fields of :class:`MissionSummary`, as a dict (twenty
    models built and dumped per page cost more than the query; the fuzz tests check answers against the schema)."""
    return {"id": row.id, "status": row.status, "current_step": row.current_step, "owner": row.owner,
            "workspace": row.workspace, "objective": row.objective or "", "created_at": iso(row.created_at),
            "error": row.error}


def page_query(*, caller: Caller, status: str | None = None, agent: str | None = None,
               created_after: datetime | None = None, created_before: datetime | None = None,
               after: tuple[datetime, str] | None = None,
               limit: int = 50) -> tuple[Select, dict[str, object]]:
    """One page of missions, newest first, ``limit + 1`` rows (the extra one says whether a next page exists):
    the statement and its parameter values.

    Keyset pagination: the page starts strictly after the ``after`` row in (created_at, id) order, so every
    page costs the same however deep it is and a mission created meanwhile neither repeats nor hides one. The
    order is an index's order (``(created_at, id)``, or ``(owner|status, created_at, id)`` when those filter),
    so the database reads ``limit + 1`` index entries instead of sorting the table.
    """
    values: dict[str, object] = {"limit": limit + 1}
    if own := caller.role in OWN_MISSIONS_ONLY:
        values["owner"] = caller.name
    if status:
        values["status"] = status
    if agent:
        values["agent"] = agent
    if created_after:
        values["created_after"] = _utc(created_after)
    if created_before:
        values["created_before"] = _utc(created_before)
    if after is not None:
        values["after_created"], values["after_id"] = after
    return _page_shape(own=own, status=bool(status), agent=bool(agent), created_after=bool(created_after),
                       created_before=bool(created_before), after=after is not None), values


@lru_cache(maxsize=64)
def _page_shape(*, own: bool, status: bool, agent: bool, created_after: bool, created_before: bool,
                after: bool) -> Select:
    """The list statement for one combination of filters, built once: its values are bound at execution, so
    SQLAlchemy's statement cache finds it without rebuilding it (half of a page's cost otherwise)."""
    created, mission_id = Mission.created_at, Mission.id
    stmt = select(*_SUMMARY_COLUMNS).order_by(created.desc(), mission_id.desc()).limit(bindparam("limit"))
    if own:
        stmt = stmt.where(Mission.owner == bindparam("owner"))
    if status:
        stmt = stmt.where(Mission.status == bindparam("status"))
    if agent:
        name = bindparam("agent", type_=String())
        involved = select(Delegation.mission_id).where(or_(Delegation.to_agent == name,
                                                           Delegation.from_agent == name))
        stmt = stmt.where(or_(Mission.spec["agent"].as_string() == name, mission_id.in_(involved)))
    if created_after:
        stmt = stmt.where(created > bindparam("created_after", type_=created.type))
    if created_before:
        stmt = stmt.where(created < bindparam("created_before", type_=created.type))
    if after:
        stmt = stmt.where(tuple_(created, mission_id) < tuple_(bindparam("after_created", type_=created.type),
                                                               bindparam("after_id", type_=mission_id.type)))
    return stmt


@lru_cache(maxsize=8)
def _reader(url: str) -> Engine:
    """The engine's read-only face: on SQLite a read takes no write lock (see ``orchestrator.db.engine``)."""
    return engine_for(url).execution_options(orch_readonly=True)


def _page_json(url: str, caller: Caller, *, limit: int, **filters: object) -> str:
    """One page as JSON: rows on a plain connection (no ORM objects) serialized once, here."""
    stmt, values = page_query(caller=caller, limit=limit, **filters)  # type: ignore[arg-type]
    with _reader(url).connect() as conn:
        rows = conn.execute(stmt, values).all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = _encode_cursor(rows[-1]) if more and rows else None
    return json.dumps({"items": [_line(row) for row in rows], "next_cursor": cursor}, separators=(",", ":"))


@router.get("", response_model=MissionPage)
async def list_missions(service: ServiceDep, caller: Reader,
                        status_: Annotated[str | None, Query(alias="status", max_length=24)] = None,
                        agent: Annotated[str | None,
                                         Query(max_length=64, description="Lead or delegated agent.")] = None,
                        created_after: datetime | None = None, created_before: datetime | None = None,
                        cursor: Annotated[str | None, Query(max_length=400)] = None,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
    """List missions, newest first, filtered by status, agent and creation time; cursor-paginated."""
    after = _decode_cursor(cursor) if cursor else None
    # The whole page (connection, query, rows, JSON) in one read, and the JSON goes out as it is: FastAPI would
    # validate and serialize the page a second time.
    body = await run_read(service, _page_json, service.url, caller, limit=limit, status=status_, agent=agent,
                          created_after=created_after, created_before=created_before, after=after)
    return Response(body, media_type="application/json")


def _mission_json(url: str, caller: Caller, mission_id: str) -> str:
    """The mission's view as JSON: direct reads in one read-only transaction, checked against the schema and
    serialized once, here."""
    with reading(url) as tx:
        mission = mission_row(tx, mission_id)
        ensure_visible(caller, mission_id, owner=mission.owner)
        view = mission_view(tx, mission_id, mission=mission)
    view["pending_approvals"] = [a for a in view["approvals"] if a["status"] == "pending"]  # in id order, as listed
    return MissionPublic.model_validate(view).model_dump_json()


@router.get("/{mission_id}", response_model=MissionPublic)
async def read_mission(mission_id: str, service: ServiceDep, caller: Reader) -> Response:
    """Read a mission: status, steps, delegations, approvals (pending ones too), artifacts, tasks, audit."""
    # One read for the whole view, as for a list page (FastAPI would validate it again).
    body = await run_read(service, _mission_json, service.url, caller, mission_id)
    return Response(body, media_type="application/json")
