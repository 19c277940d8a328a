"""Notification rules: the buyer hears when an order is paid, refunded, failed or expired."""

from __future__ import annotations

from typing import Any

from platform_core import NotificationRule


async def _buyer(event: Any) -> list[int]:
    return [int(event.payload["buyer_id"])]


def rules() -> list[NotificationRule]:
    """One rule per buyer-facing order event."""
    return [
        NotificationRule(
            "payments.order.paid",
            _buyer,
            title="Order {order_id} paid",
            body="We received {captured} {currency}. Thank you.",
        ),
        NotificationRule(
            "payments.order.refunded",
            _buyer,
            title="Order {order_id} refunded",
            body="{amount} {currency} is on its way back to you ({reason}).",
        ),
        NotificationRule(
            "payments.order.failed",
            _buyer,
            title="Payment of order {order_id} failed",
            body="{reason}",
        ),
        NotificationRule(
            "payments.order.expired",
            _buyer,
            title="Order {order_id} expired",
            body="The payment of {total} {currency} was not completed in time.",
        ),
    ]
