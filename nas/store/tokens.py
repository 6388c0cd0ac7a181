"""API tokens: created once (the plain token is shown to the caller and never stored), checked by hash."""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from nas.store.models import ApiToken, utcnow

Scope = Literal["read", "write"]
PREFIX = "hwnas_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, scope: Scope, name: str = "") -> str:
    if scope not in ("read", "write"):
        raise ValueError(f"scope must be 'read' or 'write', got {scope!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name or scope, scope=scope, token_hash=_hash(token)))
    return token


def check_token(session: Session, token: str) -> Scope | None:
    """The token's scope, or None if unknown or revoked; marks it used."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token), ApiToken.revoked.is_(False)))
    if row is None:
        return None
    row.last_used_at = utcnow()
    return row.scope  # type: ignore[return-value]


def any_tokens(session: Session) -> bool:
    return session.scalar(select(ApiToken.id).where(ApiToken.revoked.is_(False)).limit(1)) is not None


def revoke_token(session: Session, token_id: int) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None:
        return False
    row.revoked = True
    return True
