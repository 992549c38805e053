"""Request dependencies: the service, a database session, and the authenticated caller with its grants."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from anyio import CancelScope, CapacityLimiter, to_thread
from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from orchestrator.api.keys import Caller, KeyCache
from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.engine import WriteBusy, write_now
from orchestrator.db.missions import get_mission
from orchestrator.db.models import Mission
from orchestrator.errors import MissionNotFound

if TYPE_CHECKING:
    from orchestrator.api.workers import WorkerPool
    from orchestrator.runner import Runner

__all__ = ["Service", "run_read", "run_write", "Permission", "GRANTS", "allow", "visible_mission", "ensure_visible", "ServiceDep", "SessionDep", "CallerDep",
           "Reader", "Actor", "Creator", "Auditor", "ApprovalReader", "Decider", "WorkspaceCreator"]

Permission = Literal["mission.create", "mission.read", "mission.act", "approval.read", "approval.decide",
                     "audit.read", "workspace.read", "workspace.create", "service.read"]
_ALL: frozenset[str] = frozenset(Permission.__args__)  # type: ignore[attr-defined]
GRANTS: dict[str, frozenset[str]] = {
    "submitter": frozenset({"mission.create", "mission.read", "mission.act", "workspace.read", "workspace.create"}),
    "approver": frozenset({"mission.read", "approval.read", "approval.decide", "workspace.read"}),
    "auditor": frozenset({"mission.read", "approval.read", "audit.read", "workspace.read", "service.read"}),
    "admin": _ALL,
}
"""What each role may do; submitters only ever see and act on their own missions."""
OWN_MISSIONS_ONLY = frozenset({"submitter"})
DOES: dict[str, str] = {
    "mission.create": "start missions", "mission.read": "read missions",
    "mission.act": "send messages to, cancel or resume missions", "approval.read": "read approvals",
    "approval.decide": "decide approvals", "audit.read": "read the audit trail", "workspace.read": "list workspaces",
    "workspace.create": "create workspaces", "service.read": "read the service's metrics",
}
"""Each permission as the end of "this role may not ...": refusals and the web page's hidden actions say it."""


@dataclass
class Service:
    """What the app shares between requests: settings, a runner for submissions and decisions, the workers."""

    settings: Settings
    runner: Runner
    pool: WorkerPool | None = None
    keys: KeyCache = field(default_factory=KeyCache)
    """The callers of recently presented keys (an authenticated request reads no key row)."""
    extras: dict[str, object] = field(default_factory=dict)

    @cached_property
    def url(self) -> str:
        # Resolved once: the default SQLite path is resolved on the file system at every call otherwise.
        return self.settings.resolved_database_url

    @cached_property
    def local_database(self) -> bool:
        """SQLite: a local file, whose short reads and writes a request runs on the event loop (:func:`run_read`)."""
        return self.url.startswith("sqlite")


_T = TypeVar("_T")


async def run_read(service: Service, read: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run a request's database read: on SQLite on the event loop itself, elsewhere on a worker thread.

    A SQLite read is a local file read that never waits for a writer (WAL), a mission's view or a list page in
    0.1-0.3 ms; under 50 concurrent clients the hop to a worker thread and back cost 1.3 ms of CPU more than
    that (the thread handoffs and GIL switches, bench/api_latency.py). A PostgreSQL read waits on the network:
    it must not hold the loop. Writes: :func:`run_write`.
    """
    if service.local_database:
        return read(*args, **kwargs)
    return await run_in_threadpool(read, *args, **kwargs)


async def run_write(service: Service, write: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run a request's short write: on SQLite on the event loop when the file is free to write at once (for the
    reason :func:`run_read` gives), else, and on PostgreSQL, on a worker thread, where it may wait its turn.

    ``write`` must be safe to run again from the start when one of its transactions finds another writer: the
    transactions before its last change nothing (a create's idempotency check, then the create).
    """
    if service.local_database:
        try:
            with write_now():
                return write(*args, **kwargs)
        except WriteBusy:
            pass
    return await run_in_threadpool(write, *args, **kwargs)


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` one on a worker thread, and those
# hops, not the work, were most of an authenticated request's cost.
async def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]

RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Row id (a positive 64-bit integer).")]
"""A path id the databases can hold: larger numbers are a validation error, not a driver overflow."""


async def get_session(service: ServiceDep) -> AsyncIterator[Session]:
    """A read-only session: the routes that take one only read, and on SQLite it takes no write lock.

    Opened on the event loop (a session does no I/O until its first query, which runs on the route's thread)
    and closed on a worker thread: one thread hop per request instead of two for a plain generator. The close
    runs outside the shared thread limit and cannot be cancelled, as FastAPI does for its own generator
    dependencies: routes waiting in every worker thread for a pooled connection would otherwise wait forever for
    the close that gives one back, and a cancelled close would never give it back."""
    scope = session_scope(service.url, readonly=True)
    session = scope.__enter__()
    close_limiter = CapacityLimiter(1)  # a new limiter per close: no close waits for a free worker thread
    try:
        yield session
    except BaseException as exc:
        with CancelScope(shield=True):
            await to_thread.run_sync(scope.__exit__, type(exc), exc, exc.__traceback__, limiter=close_limiter)
        raise
    with CancelScope(shield=True):
        await to_thread.run_sync(scope.__exit__, None, None, None, limiter=close_limiter)


_OPEN_SESSIONS = 10
"""Request sessions open at once, fewer than any engine's pooled connections (SQLite 5 + 10, PostgreSQL
10 + 20, see ``orchestrator.db.engine``). A sync route's answer is validated on a worker thread while its
session still holds a connection: were every connection held by such sessions and every worker thread taken
by routes waiting for a connection, no request would ever finish. With fewer sessions than connections one
is always free. Requests over the limit wait on the event loop, not on a thread."""
SessionDep = Annotated[Session, Depends(get_session, max_concurrency=_OPEN_SESSIONS)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `orchestrator keys create --role ROLE`.")
_api_key = APIKeyHeader(name="X-Api-Key", auto_error=False, description="The same key, as LangGraph clients send it.")
_UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


def _look_up_key(service: Service, key: str) -> Caller | None:
    with session_scope(service.url, readonly=True) as session:
        return service.keys.lookup(session, key=key)


async def get_caller(service: ServiceDep,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                     api_key: Annotated[str | None, Depends(_api_key)] = None) -> Caller:
    """The key's caller: from the service's key cache, else (a miss, or revocations due a re-check) the database."""
    if service.settings.dev_no_auth:
        return Caller(name="dev", role="admin")
    key = credentials.credentials if credentials is not None and credentials.credentials else api_key
    if not key:
        raise HTTPException(401, "an API key is required: send 'Authorization: Bearer KEY' (or 'X-Api-Key: KEY')",
                            _UNAUTHENTICATED)
    caller = service.keys.cached(key)
    if caller is None:
        caller = await run_in_threadpool(_look_up_key, service, key)
    if caller is None:
        raise HTTPException(401, "the API key is unknown or revoked", _UNAUTHENTICATED)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def allow(permission: Permission) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets the caller through only when its role grants ``permission``."""

    async def check(caller: CallerDep) -> Caller:
        if permission not in GRANTS.get(caller.role, frozenset()):
            may = " or ".join(role for role, grants in GRANTS.items() if permission in grants)
            raise HTTPException(403, f"the {caller.role} role may not {DOES[permission]} (key {caller.name!r}); "
                                     f"a key with the {may} role may")
        return caller

    check.__name__ = f"allow_{permission.replace('.', '_')}"
    return check


def visible_mission(session: Session, caller: Caller, mission_id: str) -> Mission:
    """The mission, if the caller may see it (a submitter sees only its own; others get 404, not 403)."""
    mission = get_mission(session, mission_id)
    ensure_visible(caller, mission_id, owner=mission.owner)
    return mission


def ensure_visible(caller: Caller, mission_id: str, *, owner: str) -> None:
    """:class:`MissionNotFound` unless the caller may see a mission of ``owner``'s (see :func:`visible_mission`)."""
    if caller.role in OWN_MISSIONS_ONLY and owner != caller.name:
        raise MissionNotFound(f"no mission with id {mission_id!r}")


Reader = Annotated[Caller, Depends(allow("mission.read"))]
Actor = Annotated[Caller, Depends(allow("mission.act"))]
Creator = Annotated[Caller, Depends(allow("mission.create"))]
Auditor = Annotated[Caller, Depends(allow("audit.read"))]
ApprovalReader = Annotated[Caller, Depends(allow("approval.read"))]
Decider = Annotated[Caller, Depends(allow("approval.decide"))]
WorkspaceReader = Annotated[Caller, Depends(allow("workspace.read"))]
WorkspaceCreator = Annotated[Caller, Depends(allow("workspace.create"))]
ServiceReader = Annotated[Caller, Depends(allow("service.read"))]
