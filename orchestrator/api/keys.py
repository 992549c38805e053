"""API keys: created once and shown once, stored as a SHA-256 hash, each granting one role.

Authenticated requests read keys through a :class:`KeyCache`, so a request with a known key costs no
database read; revocation is still honoured (see the class for how soon).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from orchestrator.db.models import ApiKey, utcnow
from orchestrator.errors import InputError

__all__ = ["Role", "ROLES", "Caller", "KeyCache", "create_key", "list_keys", "revoke_key", "authenticate",
           "hash_key"]

Role = Literal["submitter", "approver", "auditor", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
_PREFIX = "orch_"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name (recorded as the actor) and its role."""

    name: str
    role: Role


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, *, role: str, name: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key for ``role``; returns the row and the key itself (the only time it is seen)."""
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    public = secrets.token_hex(4)
    key = f"{_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    name = name or f"{role}-{public}"
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))) is not None:
        raise InputError(f"an active key is already named {name!r}; pick another --name or revoke that one")
    row = ApiKey(name=name, role=role, prefix=public, key_sha256=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, *, name_or_prefix: str) -> ApiKey:
    """Revoke the active key with this name or prefix."""
    row = session.scalar(select(ApiKey).where((ApiKey.name == name_or_prefix) | (ApiKey.prefix == name_or_prefix),
                                              ApiKey.revoked_at.is_(None)))
    if row is None:
        raise InputError(f"no active key named {name_or_prefix!r} (see `orchestrator keys list`)")
    row.revoked_at = utcnow()
    # Every cache in this process forgets its callers once the revocation is committed (not before: a request
    # reading the row in between would cache it again as active).
    event.listen(session, "after_commit", _forget_all_callers, once=True)
    return row


def authenticate(session: Session, *, key: str) -> Caller | None:
    """The caller a presented key stands for, or None (unknown, malformed or revoked)."""
    if not key.startswith(_PREFIX) or len(key) > 200:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_sha256 == hash_key(key)))
    if row is None or row.revoked_at is not None or row.role not in ROLES:
        return None
    return Caller(name=row.name, role=row.role)  # type: ignore[arg-type]


_revocations = itertools.count(1)
_revocation_generation = 0
"""Bumped after every revocation committed in this process; a cache whose generation differs starts empty."""


def _forget_all_callers(_session: Session) -> None:
    global _revocation_generation
    _revocation_generation = next(_revocations)


def _watermark(session: Session) -> tuple[int, int, object]:
    """What changes whenever a key is added, revoked or deleted: one aggregate over the (small) key table."""
    row = session.execute(select(func.count(), func.count(ApiKey.revoked_at), func.max(ApiKey.revoked_at))).one()
    return int(row[0]), int(row[1]), row[2]


class KeyCache:
    """The callers of keys presented recently, so an authenticated request reads no key row and writes nothing.

    Revocation is honoured at once for a revocation committed in this process (``revoke_key`` empties every
    cache after its commit), and within ``recheck_s`` for one committed by another process (the CLI, another
    server): the first request after that interval reads the key table's watermark (count of keys, count and
    latest time of revocations, one aggregate query) and empties the cache when it moved. Entries also expire
    after ``ttl_s`` and the cache holds at most ``max_entries`` (least recently used go first). Unknown and
    revoked keys are never cached: each such request asks the database.
    """

    def __init__(self, *, ttl_s: float = 30.0, recheck_s: float = 1.0, max_entries: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.recheck_s, self.max_entries, self._clock = ttl_s, recheck_s, max_entries, clock
        self._entries: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = _revocation_generation
        self._watermark: tuple[int, int, object] | None = None
        self._checked_at = float("-inf")

    def cached(self, key: str) -> Caller | None:
        """The caller for ``key`` when the cache may answer without the database; None: ask :meth:`lookup`."""
        now = self._clock()
        with self._lock:
            self._sync_generation()
            if now - self._checked_at > self.recheck_s:
                return None
            return self._fresh(hash_key(key), now)

    def lookup(self, session: Session, *, key: str) -> Caller | None:
        """The caller for ``key``, reading the revocation watermark when it is due and the key row on a miss."""
        digest, now = hash_key(key), self._clock()
        with self._lock:
            generation = self._sync_generation()
            due = now - self._checked_at > self.recheck_s
        if due:
            mark = _watermark(session)
            with self._lock:
                if mark != self._watermark:
                    self._entries.clear()
                self._watermark, self._checked_at = mark, now
                if self._sync_generation() == generation and (caller := self._fresh(digest, now)) is not None:
                    return caller
        caller = authenticate(session, key=key)
        if caller is not None:
            with self._lock:
                # A revocation committed while the row was being read wins: this answer is not kept.
                if self._sync_generation() == generation:
                    self._entries[digest] = (caller, now + self.ttl_s)
                    self._entries.move_to_end(digest)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
        return caller

    def _fresh(self, digest: str, now: float) -> Caller | None:
        entry = self._entries.get(digest)
        if entry is None or entry[1] <= now:
            return None
        self._entries.move_to_end(digest)
        return entry[0]

    def _sync_generation(self) -> int:
        if self._generation != _revocation_generation:
            self._entries.clear()
            self._generation = _revocation_generation
        return self._generation
