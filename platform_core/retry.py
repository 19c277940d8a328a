"""Replaying a request whose transaction hit a deadlock or a serialization failure.

PostgreSQL aborts one of two transactions that wait on each other (``40P01`` deadlock
detected) or that cannot be serialized (``40001``); SQLite reports a stale snapshot
(``SQLITE_BUSY_SNAPSHOT``). Such a failure says nothing about the request: running it
again succeeds. :class:`TransactionRetryMiddleware` does that for every route of the core
and of every plugin, in one place:

- It records the request body as the app reads it, and watches the database engine (its
  dialect's statement, commit and rollback methods: :func:`watch`) for errors and commits
  made on behalf of this request.
- When a retryable error was raised by the database and the request failed before any
  response was sent (the exception escaped, or an exception handler answered 5xx), it
  runs the whole request again: a fresh session, the same body, up to ``attempts`` times
  in all, with a short random back-off.
- It never replays a request after one of its transactions *that wrote* has committed
  (a route committing in two steps), nor once a response has started. Writes that may
  run twice (a token's last use, recorded while authenticating) are marked with
  :func:`replay_safe`.
- When every attempt failed, or a replay would repeat a committed write, it answers
  ``503`` ``application/problem+json`` (``/problems/transaction-conflict``) with
  ``Retry-After: 1``, never a 500.

Services keep raising their domain errors; a route with side effects outside the database
before its first commit (an HTTP call to a device, say) may see them repeated on a replay.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.ext.asyncio import AsyncEngine

from platform_core.errors import exception_chain

log = logging.getLogger("platform_core.retry")

ATTEMPTS = 4
"""Runs of one request in all (the first and up to three replays)."""

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
"""PostgreSQL: serialization_failure, deadlock_detected."""

SQLITE_BUSY_SNAPSHOT = 517

_READ_ONLY = re.compile(
    r"^\s*(SELECT|PRAGMA|SAVEPOINT|RELEASE|ROLLBACK|BEGIN|SET|SHOW)\b", re.IGNORECASE
)


def is_retryable(exc: BaseException) -> bool:
    """True for a deadlock or serialization failure (PostgreSQL ``40P01``/``40001``, SQLite
    ``SQLITE_BUSY_SNAPSHOT``), wrapped by SQLAlchemy or not."""
    for e in exception_chain(exc):
        if str(getattr(e, "sqlstate", "") or getattr(e, "pgcode", "") or "") in (
            RETRYABLE_SQLSTATES
        ):
            return True
        if getattr(e, "sqlite_errorcode", None) == SQLITE_BUSY_SNAPSHOT:
            return True
    return False


@dataclass
class _Attempt:
    """What the database did on behalf of one run of one request."""

    retryable: BaseException | None = None
    committed_writes: bool = False


_current: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "platform_transaction_attempt", default=None
)
_safe: contextvars.ContextVar[bool] = contextvars.ContextVar("platform_replay_safe", default=False)


def watch(engine: AsyncEngine) -> None:
    """Report the engine's retryable errors and committed writes to the running request
    (idempotent).

    The engine's dialect is given a subclass (:class:`_WatchingDialect`) whose statement,
    commit and rollback methods do the reporting, instead of SQLAlchemy event listeners:
    a connection-level listener on an engine makes every ``Connection`` join the engine's
    event dispatcher and build a listener collection per event it fires, which was the
    largest single cost the platform added to a one-row request (see docs/scaling.md).
    """
    dialect = engine.sync_engine.dialect
    if isinstance(dialect, _WatchingDialect):
        return
    cls = type(dialect)
    watching = _watching_classes.get(cls)
    if watching is None:
        # SQLAlchemy caches compiled statements only for a dialect class that says so itself
        own = {"supports_statement_cache": cls.__dict__.get("supports_statement_cache")}
        watching = type(f"Watching{cls.__name__}", (_WatchingDialect, cls), own)
        _watching_classes[cls] = watching
    dialect.__class__ = watching


_WROTE = "platform_wrote"
"""Key in a pooled connection's ``info``: its open transaction wrote, on behalf of a request."""


def _note_error(exc: BaseException) -> None:
    attempt = _current.get()
    if attempt is not None and is_retryable(exc):
        attempt.retryable = exc


def _note_statement(statement: str, context: Any) -> None:
    if (
        _current.get() is not None
        and context is not None  # SQLAlchemy's own statements (a sequence's next value)
        and not _safe.get()
        and not _READ_ONLY.match(statement)
    ):
        context.root_connection.info[_WROTE] = True


class _WatchingDialect(DefaultDialect):
    """Mixed in before an engine's own dialect class by :func:`watch`: every statement, commit
    and rollback of the engine passes through these methods (as it would through SQLAlchemy's
    ``before_cursor_execute``, ``handle_error``, ``commit`` and ``rollback`` events).

    - A statement that writes, run for a request outside :func:`replay_safe`, marks its
      connection (``info``, which lives as long as the driver's connection).
    - A commit of a marked connection tells the request that a write is committed (a replay
      would repeat it); a rollback clears the mark.
    - A retryable error raised by a statement or a commit is reported to the request.
    """

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        """Run one statement (see the class)."""
        _watched(super().do_execute, statement, context, cursor, statement, parameters, context)

    def do_executemany(
        self, cursor: Any, statement: str, parameters: Any, context: Any = None
    ) -> None:
        """Run one statement with many parameter sets (see the class)."""
        _watched(super().do_executemany, statement, context, cursor, statement, parameters, context)

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        """Run one statement without parameters (see the class)."""
        _watched(super().do_execute_no_params, statement, context, cursor, statement, context)

    def do_commit(self, dbapi_connection: Any) -> None:
        """Commit (see the class); ``dbapi_connection`` is the pool's proxy, with ``info``."""
        try:
            super().do_commit(dbapi_connection)
        except Exception as exc:
            _note_error(exc)
            raise
        finally:
            wrote = _pop_wrote(dbapi_connection)
        attempt = _current.get()
        if wrote and attempt is not None:
            attempt.committed_writes = True

    def do_rollback(self, dbapi_connection: Any) -> None:
        """Roll back (see the class): the transaction's writes are gone."""
        _pop_wrote(dbapi_connection)
        super().do_rollback(dbapi_connection)


def _watched(run: Any, statement: str, context: Any, *args: Any) -> None:
    """``run(*args)``, the dialect's own way to send ``statement``: noted, and its retryable
    error reported."""
    _note_statement(statement, context)
    try:
        run(*args)
    except Exception as exc:
        _note_error(exc)
        raise


def _pop_wrote(dbapi_connection: Any) -> bool:
    try:  # the pool's proxy (a detached one's info is a fresh dict)
        info = dbapi_connection.info
    except (AttributeError, NotImplementedError):  # the pool's first-connect adapter
        return False
    return bool(info.pop(_WROTE, False)) if isinstance(info, dict) else False


_watching_classes: dict[type, type] = {}


@contextmanager
def replay_safe() -> Iterator[None]:
    """Writes committed inside this block do not prevent a replay of the request: use it
    for bookkeeping that may run twice (the core marks a token's last use with it)."""
    token = _safe.set(True)
    try:
        yield
    finally:
        _safe.reset(token)


class TransactionRetryMiddleware:
    """Pure ASGI: replay a request whose transaction deadlocked (see the module)."""

    def __init__(self, app: Any, engine: AsyncEngine, attempts: int = ATTEMPTS) -> None:
        self.app = app
        self.attempts = max(1, attempts)
        watch(engine)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run one request, replaying it after a retryable database failure.

        A run is: the app, called with a ``receive`` that records the body (and replays it
        on a later run) and a ``send`` that drops a 5xx answering a retryable failure. It
        ends ``answered``; or, after a retryable failure before any response was sent, in a
        replay (nothing committed) or, when a write was committed, in a 503. (Written as
        one coroutine: every await of the request passes through each frame on its stack.)
        """
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorded: list[dict[str, Any]] = []
        for number in range(1, self.attempts + 1):
            attempt = _Attempt()
            run = _Run(recorded, receive, send, attempt)
            token = _current.set(attempt)
            try:
                await self.app(scope, run.receive, run.send)
            except Exception:
                if run.started or attempt.retryable is None:
                    raise
                run.swallowed = True
            finally:
                _current.reset(token)
            if not run.swallowed:
                return
            last = number == self.attempts or attempt.committed_writes
            log.warning(
                "transaction failed (%s), %s",
                type(attempt.retryable).__name__,
                "giving up" if last else "replaying the request",
                extra={"path": scope.get("path"), "attempt": number},
            )
            if last:
                break
            await asyncio.sleep(random.uniform(0.005, 0.03) * number)
        await _send_unavailable(scope, send)


class _Run:
    """One run of a request: its ``receive`` (recording, then replaying, the body) and its
    ``send`` (dropping a 5xx that answers a retryable failure)."""

    __slots__ = ("_receive", "_send", "attempt", "recorded", "replayed", "started", "swallowed")

    def __init__(
        self, recorded: list[dict[str, Any]], receive: Any, send: Any, attempt: _Attempt
    ) -> None:
        self.recorded = recorded
        self.replayed = list(recorded)
        self._receive = receive
        self._send = send
        self.attempt = attempt
        self.started = False
        self.swallowed = False

    async def receive(self) -> dict[str, Any]:
        """The recorded body first (on a replay), then the client's messages, recorded."""
        if self.replayed:
            return self.replayed.pop(0)
        message: dict[str, Any] = await self._receive()
        if message["type"] == "http.request":
            self.recorded.append(message)
        return message

    async def send(self, message: dict[str, Any]) -> None:
        """Pass the response on, unless it is the 5xx of a failure that will be replayed."""
        if self.swallowed:
            return
        if message["type"] == "http.response.start" and not self.started:
            if self.attempt.retryable is not None and message["status"] >= 500:
                self.swallowed = True  # an exception handler answered the failure: drop it
                return
            self.started = True
        await self._send(message)


async def _send_unavailable(scope: dict[str, Any], send: Any) -> None:
    body: dict[str, Any] = {
        "type": "/problems/transaction-conflict",
        "title": "Service unavailable",
        "status": 503,
        "detail": "the change kept conflicting with concurrent changes; try again",
        "instance": scope.get("path", ""),
    }
    request_id = (scope.get("state") or {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
