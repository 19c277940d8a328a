"""Managing user accounts: role, deactivation, deletion, password reset, and their record.

Every change is written to ``core_user_audit`` in the same transaction (who, what, to whom,
when) and published as a ``core.user.*`` event. An admin cannot take the last active admin
away (demote, deactivate or delete it): every change that could is serialized on one named
lock, so two admins demoting each other at once cannot both win. Deactivating a user
revokes their API tokens in the same transaction; callers then forget cached credentials
(``ctx.forget_credentials()``) so that it bites at once in this process.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core.auth.models import ApiToken, User, UserAudit
from platform_core.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from platform_core.auth.service import create_user, get_user
from platform_core.db import utcnow
from platform_core.errors import Conflict, NotFound, invalid
from platform_core.events.outbox import publish
from platform_core.locks import lock_row, serialize
from platform_core.pagination import page_by_id
from platform_core.specs import ROLES

ADMINS_LOCK = "core.user_admins"
"""The named lock every change that can remove an active admin takes first."""
GENERATED_PASSWORD_BYTES = 18
"""Random bytes of a generated password (24 URL-safe characters)."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an authenticated user (``id``) or an operator at the CLI."""

    name: str
    id: int | None = None


def record(
    session: AsyncSession, actor: Actor, user: User, action: str, **detail: Any
) -> UserAudit:
    """Add an audit entry for ``action`` on ``user`` and publish ``core.user.<action>``."""
    entry = UserAudit(
        at=utcnow(),
        actor=actor.name[:100],
        actor_id=actor.id,
        user_id=user.id,
        username=user.username,
        action=action,
        detail=detail,
    )
    session.add(entry)
    publish(
        session,
        name=f"core.user.{action}",
        payload={"user_id": user.id, "username": user.username, **detail},
        actor=actor.name,
    )
    return entry


async def _locked_user(session: AsyncSession, user_id: int) -> User:
    """``user_id``'s current row, locked until the transaction ends; ``NotFound`` otherwise."""
    await serialize(session, ADMINS_LOCK)
    user = await lock_row(session, User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def _refuse_last_admin(session: AsyncSession, user: User, change: str) -> None:
    """``Conflict`` when ``user`` is the only active admin (call with :data:`ADMINS_LOCK` held)."""
    if user.role != "admin" or not user.is_active:
        return
    others = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.is_active.is_(True), User.id != user.id)
    )
    if not others:
        raise Conflict(
            f"user {user.username!r} is the last active admin and cannot be {change}; "
            "make another user admin first",
            current_state="last_admin",
        )


async def revoke_user_tokens(session: AsyncSession, user_id: int) -> int:
    """Revoke every active API token of ``user_id``; how many were revoked."""
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def active_token_count(session: AsyncSession, user_id: int) -> int:
    """How many API tokens of ``user_id`` are not revoked (expired ones included)."""
    count = await session.scalar(
        select(func.count())
        .select_from(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    )
    return int(count or 0)


async def create_user_recorded(
    session: AsyncSession, actor: Actor, username: str, role: str, password: str | None
) -> User:
    """:func:`~platform_core.auth.service.create_user`, recorded in the audit log."""
    user = await create_user(session, username, role, password)
    record(session, actor, user, "created", role=role, password=password is not None)
    return user


async def set_role(session: AsyncSession, actor: Actor, user_id: int, role: str) -> User:
    """Give ``user_id`` another role; ``Conflict`` when it would demote the last admin.

    Their API tokens keep working with the scopes the new role holds (a token's scopes are
    intersected with its user's role on every use).
    """
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    user = await _locked_user(session, user_id)
    if user.role == role:
        return user
    if role != "admin":
        await _refuse_last_admin(session, user, "demoted")
    previous, user.role = user.role, role
    record(session, actor, user, "role_changed", **{"from": previous, "to": role})
    await session.flush()
    return user


async def set_active(session: AsyncSession, actor: Actor, user_id: int, active: bool) -> User:
    """Deactivate (revoking every API token at once) or reactivate ``user_id``.

    A deactivated user cannot log in, and none of their credentials (API tokens or access
    tokens) is accepted. ``Conflict`` when it would deactivate the last active admin.
    Reactivating does not bring revoked tokens back.
    """
    user = await _locked_user(session, user_id)
    if user.is_active == active:
        return user
    if not active:
        await _refuse_last_admin(session, user, "deactivated")
        user.is_active = False
        revoked = await revoke_user_tokens(session, user.id)
        record(session, actor, user, "deactivated", tokens_revoked=revoked)
    else:
        user.is_active = True
        record(session, actor, user, "activated")
    await session.flush()
    return user


async def delete_user(session: AsyncSession, actor: Actor, user_id: int) -> None:
    """Delete ``user_id`` with their tokens and inbox; the audit record stays.

    ``Conflict`` for the last active admin. Plugins learn of it through the
    ``core.user.deleted`` event (payload ``user_id``, ``username``).
    """
    user = await _locked_user(session, user_id)
    await _refuse_last_admin(session, user, "deleted")
    record(session, actor, user, "deleted", role=user.role)
    await session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    await session.delete(user)
    await session.flush()


def generate_password() -> str:
    """A random password for a reset (URL-safe, 24 characters)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


async def reset_password(
    session: AsyncSession,
    actor: Actor,
    user_id: int,
    password: str | None,
    *,
    revoke_tokens: bool = False,
) -> str | None:
    """Set a new password (``None``: generate one); returns the generated one, else None.

    The old password is never read back or shown (only its hash is stored). With
    ``revoke_tokens`` every API token of the user is revoked too.
    """
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise invalid("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    generated = generate_password() if password is None else None
    user = await lock_row(session, User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    user.password_hash = hash_password(password or generated or "")
    revoked = await revoke_user_tokens(session, user.id) if revoke_tokens else 0
    record(
        session,
        actor,
        user,
        "password_reset",
        generated=generated is not None,
        tokens_revoked=revoked,
    )
    await session.flush()
    return generated


async def find_user(session: AsyncSession, ref: str) -> User:
    """A user by name, or by id when ``ref`` is all digits and no user has that name."""
    user = await session.scalar(select(User).where(User.username == ref))
    if user is None and ref.isdigit():
        return await get_user(session, int(ref))
    if user is None:
        raise NotFound(f"user {ref!r} not found")
    return user


async def list_audit(
    session: AsyncSession,
    *,
    user_id: int | None = None,
    cursor: int | None = None,
    limit: int | None = 50,
) -> tuple[list[UserAudit], int | None]:
    """A page of audit entries, newest first (one user's, or everyone's), and the next cursor."""
    stmt = select(UserAudit)
    if user_id is not None:
        stmt = stmt.where(UserAudit.user_id == user_id)
    return await page_by_id(
        session, stmt, UserAudit.id, cursor=cursor, limit=limit, descending=True
    )
