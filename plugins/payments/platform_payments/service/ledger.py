"""The ledger check: every order's amounts agree with its transactions and its state.

Invariants per order: ``captured`` equals the completed captures; ``refunded`` equals the
completed and pending refunds and reversals; ``refunded <= captured``; and the state fits
the amounts (``paid``: nothing refunded, ``partially_refunded``: some, ``refunded``: all, an
unpaid state: nothing captured).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import publish
from platform_payments import states
from platform_payments.events import LedgerDiscrepancy
from platform_payments.models import Order, Transaction


@dataclass(frozen=True)
class Finding:
    """One order whose ledger disagrees, and how."""

    order_id: int
    problems: list[str]


def _problems(status: str, captured: int, refunded: int, caps: int, refs: int) -> list[str]:
    out = []
    if captured != caps:
        out.append(f"captured {captured} but completed captures sum to {caps}")
    if refunded != refs:
        out.append(f"refunded {refunded} but refunds sum to {refs}")
    if refunded > captured:
        out.append(f"refunded {refunded} exceeds captured {captured}")
    expected = {
        states.PAID: refunded == 0 and captured > 0,
        states.PARTIALLY_REFUNDED: 0 < refunded < captured,
        states.REFUNDED: captured > 0 and refunded == captured,
    }.get(status, captured == 0 and refunded == 0)
    if not expected:
        out.append(f"state {status} does not fit captured {captured} and refunded {refunded}")
    return out


async def check(session: AsyncSession, *, publish_events: bool = False) -> list[Finding]:
    """Every order breaking an invariant (optionally publishing ``payments.ledger.discrepancy``)."""
    money_back = and_(
        or_(Transaction.kind == "refund", Transaction.kind == "reversal"),
        Transaction.status.in_(("completed", "pending")),
    )
    caps = func.coalesce(
        func.sum(
            case(
                (
                    and_(Transaction.kind == "capture", Transaction.status == "completed"),
                    Transaction.amount_minor,
                ),
                else_=0,
            )
        ),
        0,
    )
    refs = func.coalesce(func.sum(case((money_back, Transaction.amount_minor), else_=0)), 0)
    rows = await session.execute(
        select(Order.id, Order.status, Order.captured_minor, Order.refunded_minor, caps, refs)
        .outerjoin(Transaction, Transaction.order_id == Order.id)
        .group_by(Order.id, Order.status, Order.captured_minor, Order.refunded_minor)
        .order_by(Order.id)
    )
    findings = []
    for order_id, status, captured, refunded, cap_sum, ref_sum in rows:
        problems = _problems(status, captured, refunded, int(cap_sum), int(ref_sum))
        if problems:
            findings.append(Finding(order_id, problems))
    if publish_events:
        for finding in findings:
            publish(
                session,
                LedgerDiscrepancy(order_id=finding.order_id, problems=finding.problems),
                actor="ledger-check",
            )
    return findings
