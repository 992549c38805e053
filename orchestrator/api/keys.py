"""API keys: created once and shown once, stored as a SHA-256 hash, each granting one role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.db.models import ApiKey, utcnow
from orchestrator.errors import InputError

__all__ = ["Role", "ROLES", "Caller", "create_key", "list_keys", "revoke_key", "authenticate", "hash_key"]

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
    return row


def authenticate(session: Session, *, key: str) -> Caller | None:
    """The caller a presented key stands for, or None (unknown, malformed or revoked)."""
    if not key.startswith(_PREFIX) or len(key) > 200:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_sha256 == hash_key(key)))
    if row is None or row.revoked_at is not None or row.role not in ROLES:
        return None
    return Caller(name=row.name, role=row.role)  # type: ignore[arg-type]
