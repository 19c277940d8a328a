"""Request and response models of orders, payments and refunds. Amounts are decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import IdPage, Line
from platform_payments.money import format_amount

StatusName = Literal[
    "created",
    "pending",
    "authorized",
    "paid",
    "partially_refunded",
    "refunded",
    "cancelled",
    "failed",
    "expired",
]
"""An order's state (:data:`platform_payments.states.STATES`)."""

AMOUNT_PATTERN = r"^[0-9]{1,20}(\.[0-9]{1,20})?$"
AmountText = Annotated[
    str,
    Field(
        pattern=AMOUNT_PATTERN,
        max_length=41,
        description='A decimal string with at most the currency\'s minor-unit digits ("10.50").',
        examples=["10.50"],
    ),
]


class SubjectIn(BaseModel):
    """What the order pays for: a thing of a plugin."""

    model_config = ConfigDict(extra="forbid")

    plugin: Line = Field(min_length=1, max_length=40)
    kind: Line = Field(min_length=1, max_length=64)
    id: Line = Field(min_length=1, max_length=128)


class ItemIn(BaseModel):
    """A line item: description, quantity, unit price."""

    model_config = ConfigDict(extra="forbid")

    description: Line = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    unit_price: AmountText


class OrderIn(BaseModel):
    """A new order."""

    model_config = ConfigDict(extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["USD"])
    items: list[ItemIn] = Field(min_length=1, max_length=1000)
    subject: SubjectIn


class PayIn(BaseModel):
    """Start paying an order with a provider."""

    model_config = ConfigDict(extra="forbid")

    provider: Line = Field(min_length=1, max_length=40, examples=["paypal", "manual"])


class MarkPaidIn(BaseModel):
    """Mark a manual order paid: the transfer's or invoice's reference."""

    model_config = ConfigDict(extra="forbid")

    reference: Line = Field(min_length=1, max_length=128)


class RefundIn(BaseModel):
    """A refund: an amount (default: all that is left), a reason, a reference (manual)."""

    model_config = ConfigDict(extra="forbid")

    amount: AmountText | None = None
    reason: Line = Field(min_length=1, max_length=255)
    reference: Line | None = Field(default=None, min_length=1, max_length=128)


class SubjectOut(BaseModel):
    """What an order pays for."""

    plugin: str
    kind: str
    id: str


class ItemOut(BaseModel):
    """A line item as stored."""

    description: str
    quantity: int
    unit_price: str


class OrderSummary(BaseModel):
    """An order without its items."""

    id: int
    buyer_id: int
    subject: SubjectOut
    currency: str
    total: str
    captured: str
    refunded: str
    refund_pending: str
    refundable: str
    status: str
    provider: str | None
    provider_order_id: str | None
    approval_url: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Any, **extra: Any) -> Any:
        """The response model of an order row."""
        c = order.currency
        return cls(
            id=order.id,
            buyer_id=order.buyer_id,
            subject=SubjectOut(
                plugin=order.subject_plugin, kind=order.subject_kind, id=order.subject_id
            ),
            currency=c,
            total=format_amount(order.total_minor, c),
            captured=format_amount(order.captured_minor, c),
            refunded=format_amount(order.refunded_minor, c),
            refund_pending=format_amount(order.refund_pending_minor, c),
            refundable=format_amount(
                max(order.captured_minor - order.refunded_minor - order.refund_pending_minor, 0),
                c,
            ),
            status=order.status,
            provider=order.provider,
            provider_order_id=order.provider_order_id,
            approval_url=order.approval_url,
            failure_reason=order.failure_reason,
            created_at=order.created_at,
            updated_at=order.updated_at,
            **extra,
        )


class OrderOut(OrderSummary):
    """An order with its line items."""

    items: list[ItemOut]


class PaymentStarted(OrderOut):
    """An order whose payment started: where the payer approves, or what to do."""

    instructions: str | None = None


class OrderPage(IdPage[OrderSummary]):
    """A page of orders, newest first; pass ``next_cursor`` as ``cursor`` for the next."""


class TransactionOut(BaseModel):
    """One interaction with a provider (its answer redacted)."""

    id: int
    kind: str
    status: str
    amount: str
    provider: str
    provider_ref: str | None
    reason: str | None
    actor: str | None
    response: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, row: Any, currency: str) -> TransactionOut:
        """The response model of a transaction row."""
        return cls(
            id=row.id,
            kind=row.kind,
            status=row.status,
            amount=format_amount(row.amount_minor, currency),
            provider=row.provider,
            provider_ref=row.provider_ref,
            reason=row.reason,
            actor=row.actor,
            response=row.response,
            created_at=row.created_at,
        )


class RefundOut(BaseModel):
    """A refund made: the order after it and the refund's transaction."""

    order: OrderSummary
    transaction: TransactionOut
