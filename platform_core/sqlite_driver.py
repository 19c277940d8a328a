"""aiosqlite connections that stop once: a cancelled query cannot hang the loop's shutdown.

aiosqlite runs each connection on a worker thread that exits at the first ``stop()``.
When a task is cancelled in the middle of a query (a client disconnected, a request
timed out), SQLAlchemy terminates the connection: it starts a graceful ``close()`` in a
shielded task and, when the wait for it is cancelled too, force-stops the connection.
The graceful close, still running, then calls ``stop()`` a second time and waits for
work the exited thread never runs: the task is pending forever. An event loop that
shuts down cancels each pending task once; if that cancel reaches the graceful close
while it waits behind a query still running on the thread, the close moves on to its
own stop and waits again, and the shutdown never ends (``platformctl serve`` exiting, a
test's loop teardown).

:func:`install` makes each SQLite connection the platform opens a
:class:`StopOnceConnection`: a later ``stop()`` waits for the first one, and ``close()``
of a connection already stopping waits for that stop instead of queueing work.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiosqlite


class StopOnceConnection(aiosqlite.Connection):
    """aiosqlite's connection whose worker thread is told to stop at most once."""

    _stopping: tuple[asyncio.Future[Any] | None] | None = None
    """``(future of the first stop,)`` once stopped; the future is None without a loop."""

    def stop(self) -> asyncio.Future[Any] | None:
        """Stop the worker thread (closing the SQLite connection first); a later call
        returns a future done when the first stop is done (None without a loop)."""
        if self._stopping is None:
            first = super().stop()
            self._stopping = (first,)
            return first
        return _after(self._stopping[0])

    async def close(self) -> None:
        """Close the connection and stop the thread; when it is already stopping, wait
        for that stop (it closes the SQLite connection too)."""
        if self._stopping is None:
            await super().close()
            return
        waiter = self.stop()
        if waiter is not None:
            await waiter


def _after(first: asyncio.Future[Any] | None) -> asyncio.Future[Any] | None:
    """A new future of the running loop, done when ``first`` is done (even cancelled: a
    waiter of the first stop was); None when there is nothing to wait for here."""
    if first is None or first.done():
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    if first.get_loop() is not loop:
        return None
    waiter = loop.create_future()

    def done(_: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    first.add_done_callback(done)
    return waiter


def install(driver_connection: Any) -> None:
    """Make ``driver_connection`` (a new aiosqlite connection) a :class:`StopOnceConnection`
    (same object, same state: the subclass only overrides two methods)."""
    if type(driver_connection) is aiosqlite.Connection and hasattr(driver_connection, "stop"):
        driver_connection.__class__ = StopOnceConnection
