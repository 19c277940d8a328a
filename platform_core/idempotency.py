"""Idempotency keys for POST routes, with Stripe's semantics.

A client sends ``Idempotency-Key: <key>`` (1-255 printable ASCII characters, a UUID is a
good choice). For one caller (the authenticated user; every anonymous caller of a public
route shares one space) the first request with a key runs; its response (status, headers,
body) is stored and every later request with the same key, method, path, query and body
gets that response again, with ``Idempotent-Replayed: true``. The same key with another
request is refused (422 naming the ``Idempotency-Key`` header); a duplicate that arrives
while the first is still running gets 409 "request in progress" and ``Retry-After``.

A route opts in with one line::

    @router.post("/things", status_code=201, dependencies=[IDEMPOTENT])
    @router.post("/charges", dependencies=[IDEMPOTENT_REQUIRED])   # the header is mandatory

How it works: the dependency claims the key by inserting its row (``state = running``,
committed at once, unique on ``(owner, key)``): the insert is the lock, on SQLite and
PostgreSQL alike, so a concurrent duplicate never runs. A middleware stores the response
(before sending it) and marks the row ``done``. Not stored, so that a retry runs again:
5xx responses, unhandled errors, and requests refused by validation before the route ran.
A claim whose process died is taken over after ``[core.idempotency] lock_seconds``; stored
responses expire after ``ttl_hours`` (the ``core.prune_idempotency_keys`` job deletes them).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from sqlalchemy import (
    JSON,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from platform_core.base import CoreBase
from platform_core.db import UTCDateTime, utcnow
from platform_core.errors import Conflict, ValidationFailed
from platform_core.retry import replay_safe

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

log = logging.getLogger("platform_core.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_HEADER_KEY = HEADER.lower().encode("latin-1")
MAX_KEY_LENGTH = 255
_STATE_KEY = "idempotency_claim"
_NOT_STORED_HEADERS = frozenset({b"set-cookie", b"x-request-id", b"date", b"server"})


class IdempotencyKey(CoreBase):
    """One idempotency key of one caller: the request it was first used with and its response."""

    __tablename__ = "core_idempotency_keys"
    __table_args__ = (
        UniqueConstraint("owner", "key", name="uq_core_idempotency_keys_owner_key"),
        Index("ix_core_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    lock_token: Mapped[str] = mapped_column(String(32))
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class StoredResponse:
    """A response kept for a key: what a replay sends back."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Claim:
    """A key this request holds while its route runs (the row ``id`` with ``token``)."""

    id: int
    token: str
    key: str = ""
    release: bool = False


class InProgress(Conflict):
    """409: the request that claimed this key is still running (``Retry-After: 1``)."""

    retry_after = 1


class Replay(Exception):
    """Raised by the dependency to answer with a stored response (handled by :func:`install`)."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("idempotent replay")
        self.stored = stored


def request_fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """The SHA-256 (hex) of a request's method, path, query string and body."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode()):
        digest.update(part + b"\n")
    digest.update(body)
    return digest.hexdigest()


def _key_error(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"{HEADER}: {message}",
        errors=[{"field": HEADER, "in": "header", "message": message}],
    )


def check_key(key: str) -> str:
    """The key if it is 1-255 printable ASCII characters, else a 422 naming the header."""
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise _key_error(f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


async def claim_key(
    ctx: PlatformContext,
    *,
    owner: str,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
) -> Claim | StoredResponse:
    """Claim ``key`` for this request, or return the response stored for it.

    Raises 422 when the key was used with another request and 409 while the request that
    claimed it is still running. The insert of the key's row is the lock; an expired row,
    or a claim whose lock ran out, is taken over by a compare-and-set on what was read.
    """
    settings = ctx.config.core.idempotency
    token = uuid.uuid4().hex
    for _ in range(3):
        now = utcnow()
        locked_until = now + timedelta(seconds=settings.lock_seconds)
        expires_at = now + timedelta(hours=settings.ttl_hours)
        try:
            async with ctx.db.session() as session:
                row = IdempotencyKey(
                    owner=owner,
                    key=key,
                    method=method,
                    path=path,
                    fingerprint=fingerprint,
                    state="running",
                    lock_token=token,
                    locked_until=locked_until,
                    created_at=now,
                    expires_at=expires_at,
                )
                session.add(row)
                await session.flush()
                return Claim(row.id, token, key)
        except IntegrityError:
            pass  # the key exists: replay, refuse or take over below
        async with ctx.db.session() as session:
            found = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.owner == owner, IdempotencyKey.key == key
                )
            )
            if found is None:
                continue  # pruned or released meanwhile: insert again
            stale = found.expires_at <= now or (
                found.state == "running" and found.locked_until <= now
            )
            if stale:
                taken = await session.execute(
                    update(IdempotencyKey)
                    .where(
                        IdempotencyKey.id == found.id,
                        IdempotencyKey.lock_token == found.lock_token,
                        IdempotencyKey.state == found.state,
                    )
                    .values(
                        method=method,
                        path=path,
                        fingerprint=fingerprint,
                        state="running",
                        lock_token=token,
                        locked_until=locked_until,
                        status_code=None,
                        response_headers=None,
                        response_body=None,
                        created_at=now,
                        expires_at=expires_at,
                    )
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    return Claim(found.id, token, key)
                continue  # another request took it over first: read again
            if (found.method, found.path, found.fingerprint) != (method, path, fingerprint):
                raise _key_error(
                    f"this key was already used with another request ({found.method} "
                    f"{found.path}, other parameters or body); use a new key"
                )
            if found.state == "running":
                raise InProgress(
                    f"a request with this {HEADER} is in progress; retry after it completes",
                    state="running",
                    errors=[{"field": HEADER, "in": "header", "message": "request in progress"}],
                )
            return StoredResponse(
                found.status_code or 200,
                [(k, v) for k, v in found.response_headers or []],
                found.response_body or b"",
            )
    raise InProgress(f"the {HEADER} is contended; retry", state="running")


async def store_response(
    ctx: PlatformContext,
    claim: Claim,
    status_code: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> bool:
    """Keep the response of a claimed request; False when the claim was lost meanwhile."""
    async with ctx.db.session() as session:
        result = await session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == claim.id,
                IdempotencyKey.lock_token == claim.token,
                IdempotencyKey.state == "running",
            )
            .values(
                state="done", status_code=status_code, response_headers=headers, response_body=body
            )
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def release_key(ctx: PlatformContext, claim: Claim) -> None:
    """Forget a claimed key (the request failed), so that a retry runs again."""
    async with ctx.db.session() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == claim.id,
                IdempotencyKey.lock_token == claim.token,
                IdempotencyKey.state == "running",
            )
        )


async def prune_idempotency_keys(ctx: PlatformContext) -> int:
    """Delete keys past their expiry (``[core.idempotency] ttl_hours`` after first use)."""
    async with ctx.db.session() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(
                or_(
                    IdempotencyKey.expires_at <= utcnow(),
                    # a claim whose process died and that nobody retried
                    (IdempotencyKey.state == "running")
                    & (IdempotencyKey.locked_until <= utcnow() - timedelta(hours=1)),
                )
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claimed_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` this request holds (None without one): pass it on to a provider
    that de-duplicates too (PayPal's ``PayPal-Request-Id``, Stripe's ``Idempotency-Key``)."""
    claim = request.scope.get("state", {}).get(_STATE_KEY)
    return claim.key if isinstance(claim, Claim) else None


def _owner(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return f"user:{principal.user_id}" if principal is not None else "public"


def idempotent(*, required: bool = False) -> DependsParam:
    """A route dependency (``dependencies=[idempotent()]``) honouring ``Idempotency-Key``.

    ``required=True`` refuses requests without the header (422 naming it).
    """
    description = (
        "Replays the first response of a request with this key (same method, path and "
        "body) for its lifetime; another request with it is refused."
    )
    header = Header(alias=HEADER, max_length=MAX_KEY_LENGTH, description=description)

    async def dependency(request: Request, key: str | None = None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        from platform_core.auth.deps import get_context

        ctx = get_context(request)
        fingerprint = request_fingerprint(
            request.method, request.url.path, request.url.query, await request.body()
        )
        state = request.scope.setdefault("state", {})
        held = state.get(_STATE_KEY)
        if isinstance(held, Claim) and held.key == check_key(key):
            outcome: Claim | StoredResponse = held  # this request, replayed after a deadlock
        else:
            with replay_safe():  # the claim does not stop a replay; the replay keeps it
                outcome = await claim_key(
                    ctx,
                    owner=_owner(request),
                    key=check_key(key),
                    method=request.method,
                    path=request.url.path,
                    fingerprint=fingerprint,
                )
        if isinstance(outcome, StoredResponse):
            raise Replay(outcome)
        state[_STATE_KEY] = outcome
        try:
            yield
        except RequestValidationError:
            outcome.release = True  # refused before the route ran: nothing to replay
            raise

    # Set explicitly: this module's postponed annotations cannot name a local type.
    key_type = str if required else str | None
    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            ),
            inspect.Parameter(
                "key",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=Annotated[key_type, header],
                **({} if required else {"default": None}),
            ),
        ]
    )
    return Depends(dependency, scope="function")


IDEMPOTENT = idempotent()
"""Route dependency: honour ``Idempotency-Key`` when the client sends one."""

IDEMPOTENT_REQUIRED = idempotent(required=True)
"""Route dependency: require ``Idempotency-Key`` (a 422 names the header when missing)."""


class IdempotencyMiddleware:
    """Pure ASGI: stores the response of a request that claimed a key, before sending it."""

    def __init__(self, app: Any, ctx: PlatformContext) -> None:
        self.app = app
        self.ctx = ctx

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """Pass requests through; buffer, store, then send the response of claimed ones.

        A request without the header cannot claim a key: it goes straight to the app, and
        no coroutine of this layer stays on its stack.
        """
        if scope["type"] != "http" or not any(k == _HEADER_KEY for k, _ in scope["headers"]):
            return self.app(scope, receive, send)
        return self._keyed(scope, receive, send)

    async def _keyed(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []
        finished = False

        async def capture(message: dict[str, Any]) -> None:
            nonlocal start, finished
            claim = scope.get("state", {}).get(_STATE_KEY)
            if claim is None or finished:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            finished = True
            body = b"".join(chunks)
            await self._finish(claim, start, body)
            await send(start)
            await send({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            claim = scope.get("state", {}).get(_STATE_KEY)
            if claim is not None and not finished:  # nothing was stored: let a retry run
                await self._release(claim)
            raise

    async def _finish(self, claim: Claim, start: dict[str, Any], body: bytes) -> None:
        status = int(start["status"])
        if status >= 500 or claim.release:
            await self._release(claim)
            return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in start.get("headers", [])
            if k.lower() not in _NOT_STORED_HEADERS
        ]
        try:
            await store_response(self.ctx, claim, status, headers, body)
        except Exception:  # the response still goes out; the claim expires after its lock
            log.exception("could not store an idempotent response")

    async def _release(self, claim: Claim) -> None:
        try:
            await release_key(self.ctx, claim)
        except Exception:
            log.exception("could not release an idempotency key")


def install(app: FastAPI, ctx: PlatformContext) -> None:
    """Answer replays and store responses of claimed keys (called by the app factory)."""

    async def replay(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Replay)
        response = Response(content=exc.stored.body, status_code=exc.stored.status_code)
        response.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in exc.stored.headers
            if k.lower() != "content-length"
        ]
        response.raw_headers.append((b"content-length", str(len(exc.stored.body)).encode()))
        response.raw_headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
        return response

    app.add_exception_handler(Replay, replay)
    app.add_middleware(IdempotencyMiddleware, ctx=ctx)
