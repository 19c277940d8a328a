"""The order state machine: every status an order may have and every move between them.

Every status change of an order goes through :func:`move`, so an illegal transition is
refused in one place (409 naming the current state). Moves happen on a row locked by the
caller (``lock_row``) or as one compare-and-set on the states they may start from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, compare_and_set, utcnow

CREATED = "created"
PENDING = "pending"
AUTHORIZED = "authorized"
PAID = "paid"
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"
CANCELLED = "cancelled"
FAILED = "failed"
EXPIRED = "expired"

STATES = (
    CREATED,
    PENDING,
    AUTHORIZED,
    PAID,
    PARTIALLY_REFUNDED,
    REFUNDED,
    CANCELLED,
    FAILED,
    EXPIRED,
)

TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({PENDING, AUTHORIZED, PAID, CANCELLED, FAILED, EXPIRED}),
    PENDING: frozenset({AUTHORIZED, PAID, CANCELLED, FAILED, EXPIRED}),
    AUTHORIZED: frozenset({PAID, CANCELLED, FAILED, EXPIRED}),
    PAID: frozenset({PARTIALLY_REFUNDED, REFUNDED}),
    PARTIALLY_REFUNDED: frozenset({PARTIALLY_REFUNDED, REFUNDED}),
    REFUNDED: frozenset(),
    CANCELLED: frozenset(),
    FAILED: frozenset(),
    EXPIRED: frozenset(),
}
"""``state -> states it may move to``. ``paid`` needs a completed capture; the refund states
follow the refunded total. ``cancelled``, ``failed``, ``expired`` and ``refunded`` are final."""

OPEN = (CREATED, PENDING, AUTHORIZED)
"""States in which the order still waits for its money."""

CAPTURED = (PAID, PARTIALLY_REFUNDED, REFUNDED)
"""States in which money was captured."""


def sources(target: str) -> tuple[str, ...]:
    """The states an order may move to ``target`` from."""
    return tuple(s for s in STATES if target in TRANSITIONS[s])


def check(order: Any, target: str) -> None:
    """Raise 409 naming the order's current state when it may not move to ``target``."""
    if target not in TRANSITIONS[order.status]:
        raise Conflict(
            f"order {order.id} is {order.status}; it cannot become {target}",
            current_state=order.status,
        )


def move(order: Any, target: str, **values: Any) -> None:
    """Move a locked order to ``target`` (409 when illegal) and set ``values`` on it."""
    check(order, target)
    order.status = target
    order.updated_at = utcnow()
    for name, value in values.items():
        setattr(order, name, value)


async def move_unlocked(
    session: AsyncSession, model: Any, order_id: int, target: str, **values: Any
) -> bool:
    """One compare-and-set of an order to ``target`` from any state it may come from.

    Raises 409 naming the current state when the order is elsewhere (``NotFound`` when it
    is gone).
    """
    return await compare_and_set(
        session,
        model,
        order_id,
        expected=sources(target),
        values={"status": target, "updated_at": utcnow(), **values},
        label=f"order {order_id}",
    )
