"""Events the payments plugin publishes: ``payments.order.*`` and ``payments.ledger.*``.

Every order event names the buyer and what the order pays for (``subject_plugin``,
``subject_kind``, ``subject_id``), so the selling plugin subscribes to its own orders with
``payments.order.paid`` and filters on ``subject_plugin``. Amounts are decimal strings.
"""

from __future__ import annotations

from typing import ClassVar

from platform_core import Event


class OrderEvent(Event):
    """What every order event carries."""

    order_id: int
    buyer_id: int
    subject_plugin: str
    subject_kind: str
    subject_id: str
    currency: str
    total: str
    provider: str | None = None


class OrderCreated(OrderEvent):
    """An order was created."""

    event_name: ClassVar[str] = "payments.order.created"


class OrderPaid(OrderEvent):
    """A capture completed: the order is paid."""

    event_name: ClassVar[str] = "payments.order.paid"
    captured: str
    reference: str | None = None


class OrderRefunded(OrderEvent):
    """Money went back to the buyer: ``amount`` now, ``refunded`` in all; ``full`` when all."""

    event_name: ClassVar[str] = "payments.order.refunded"
    amount: str
    refunded: str
    full: bool
    reason: str


class OrderRefundFailed(OrderEvent):
    """A refund the provider had accepted as pending failed or was cancelled: its amount is
    refundable again and nothing went back to the buyer."""

    event_name: ClassVar[str] = "payments.order.refund_failed"
    amount: str
    status: str
    refund_ref: str | None = None
    reason: str


class OrderFailed(OrderEvent):
    """The payment was declined, reversed before capture, or failed for good."""

    event_name: ClassVar[str] = "payments.order.failed"
    reason: str


class OrderExpired(OrderEvent):
    """The payer never approved in time; the order expired."""

    event_name: ClassVar[str] = "payments.order.expired"


class OrderCancelled(OrderEvent):
    """The buyer or an admin cancelled the unpaid order."""

    event_name: ClassVar[str] = "payments.order.cancelled"


class LedgerDiscrepancy(Event):
    """The ledger check found an order whose amounts, transactions and state disagree."""

    event_name: ClassVar[str] = "payments.ledger.discrepancy"
    order_id: int
    problems: list[str]
