"""Users, API tokens and credential checks: the core's auth logic (no HTTP here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core._deprecation import moved_names
from platform_core.auth.models import ApiToken, User
from platform_core.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from platform_core.auth.tokens import decode_jwt, is_api_token, new_api_token, token_digest
from platform_core.db import utcnow
from platform_core.errors import Conflict, NotFound, invalid
from platform_core.specs import ROLES
from platform_core.types import text_error

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=3660)
"""The longest lifetime a token may be given (about ten years)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do."""

    user_id: int
    username: str
    role: str
    scopes: frozenset[str]
    token_id: int | None = None
    expires_at: datetime | None = None
    """When the credential stops being valid (None: never); caches must not outlive it."""

    @property
    def is_admin(self) -> bool:
        """True for the admin role."""
        return self.role == "admin"

    def has(self, *scopes: str) -> bool:
        """True when every scope in ``scopes`` is held."""
        return all(s in self.scopes for s in scopes)


def parse_duration(text: str, field: str = "expires_in") -> timedelta:
    """``30d``, ``12h``, ``15m``, ``45s`` or ``2w`` as a timedelta, at most :data:`MAX_DURATION`.

    ``ValidationFailed`` naming ``field`` otherwise.
    """
    m = DURATION_RE.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise invalid(
            field,
            f"invalid duration {text[:40]!r}: use a positive number and s, m, h, d or w (e.g. 30d)",
        )
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise invalid(field, f"{text.strip()} is too long: at most {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


async def count_users(session: AsyncSession) -> int:
    """How many users exist."""
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def create_user(
    session: AsyncSession, username: str, role: str, password: str | None
) -> User:
    """Create a user; ``Conflict`` when the name is taken, ``ValidationFailed`` on bad input."""
    if not USERNAME_RE.fullmatch(username):
        raise invalid(
            "username", "1-64 letters, digits or . _ @ -, starting with a letter or digit"
        )
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise invalid("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    user = User(
        username=username,
        role=role,
        is_active=True,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"user {username!r} already exists") from exc
    return user


async def list_users(session: AsyncSession) -> list[User]:
    """Every user, by id."""
    return list((await session.scalars(select(User).order_by(User.id))).all())


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The user with ``user_id``, or ``NotFound``."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def get_user_by_name(session: AsyncSession, username: str) -> User:
    """The user called ``username``, or ``NotFound``."""
    user = (await session.scalars(select(User).where(User.username == username))).first()
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user when the password matches; None otherwise (same cost either way)."""
    user = (await session.scalars(select(User).where(User.username == username))).first()
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        return None
    user.last_login_at = utcnow()
    return user


async def create_token(
    session: AsyncSession,
    user: User,
    *,
    scopes: list[str] | None,
    known_scopes: frozenset[str],
    role_scopes: frozenset[str],
    expires_in: timedelta | None,
    name: str = "",
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the record and the secret (shown once).

    ``scopes=None`` means every scope of the user's role, at request time. Asked scopes
    must exist and be held by the role.
    """
    bad_name = text_error(name)
    if bad_name is not None:  # the CLI reaches here without the API's schema
        raise invalid("name", bad_name[1])
    if scopes is not None:
        unknown = sorted(set(scopes) - known_scopes)
        if unknown:
            raise invalid("scopes", f"unknown scope {unknown[0]!r}")
        beyond = sorted(set(scopes) - role_scopes)
        if beyond:
            raise invalid("scopes", f"role {user.role!r} does not hold scope {beyond[0]!r}")
    secret, prefix, digest = new_api_token()
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=prefix,
        digest=digest,
        scopes=sorted(set(scopes)) if scopes is not None else None,
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(token)
    await session.flush()
    return token, secret


async def list_tokens(session: AsyncSession, user_id: int | None = None) -> list[ApiToken]:
    """Tokens of one user (or all users), by id; secrets are never stored."""
    query = select(ApiToken).order_by(ApiToken.id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list((await session.scalars(query)).all())


async def revoke_token(
    session: AsyncSession, token_id: int, *, owner_id: int | None = None
) -> ApiToken:
    """Revoke a token (idempotent); ``owner_id`` restricts it to that user's tokens."""
    token = await session.get(ApiToken, token_id)
    if token is None or (owner_id is not None and token.user_id != owner_id):
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


async def resolve_credential(
    session: AsyncSession,
    credential: str,
    *,
    secret_key: str,
    role_scopes: dict[str, frozenset[str]],
) -> Principal | None:
    """The principal behind a bearer credential (API token or JWT); None when invalid.

    A token's effective scopes are its own scopes intersected with its user's role, so
    demoting a user narrows their existing tokens too.
    """
    if is_api_token(credential):
        token = (
            await session.scalars(
                select(ApiToken).where(ApiToken.digest == token_digest(credential))
            )
        ).first()
        if token is None or token_state(token) != "active":
            return None
        user = await session.get(User, token.user_id)
        if user is None or not user.is_active:
            return None
        held = role_scopes.get(user.role, frozenset())
        scopes = held if token.scopes is None else held & frozenset(token.scopes)
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            token.last_used_at = now  # coarse, to keep hot paths free of writes
        return Principal(user.id, user.username, user.role, scopes, token.id, token.expires_at)
    claims = decode_jwt(secret_key, credential)
    if claims is None:
        return None
    try:
        user_id = int(claims["sub"])
    except (KeyError, ValueError):
        return None
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    held = role_scopes.get(user.role, frozenset())
    asked = frozenset(str(claims.get("scope", "")).split())
    expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    return Principal(user.id, user.username, user.role, held & asked, expires_at=expires_at)


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "Principal": "platform_core.Principal",
        "create_user": "platform_core.create_user",
        "get_user": "platform_core.get_user",
        "create_token": "platform_core.create_token",
        "list_tokens": "platform_core.list_tokens",
        "revoke_token": "platform_core.revoke_token",
        "token_state": "platform_core.token_state",
        "parse_duration": "platform_core.parse_duration",
    },
)
