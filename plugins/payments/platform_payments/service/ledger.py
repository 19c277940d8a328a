"""The ledger check: every order's amounts agree with its transactions and its state.

Invariants per order: ``captured`` equals the completed captures; ``refunded`` equals the
completed refunds and reversals; ``refund_pending`` (reserved) equals the pending refunds;
``refunded + refund_pending <= captured``; and the state fits the completed amounts
(``paid``: nothing refunded, ``partially_refunded``: some, ``refunded``: all, an unpaid
state: nothing captured nor reserved). Failed and cancelled refunds count nowhere.
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


@dataclass(frozen=True)
class _Sums:
    captured: int
    refunded: int
    pending: int


def _problems(status: str, order: _Sums, txs: _Sums) -> list[str]:
    captured, refunded, pending = order.captured, order.refunded, order.pending
    out = []
    if captured != txs.captured:
        out.append(f"captured {captured} but completed captures sum to {txs.captured}")
    if refunded != txs.refunded:
        out.append(f"refunded {refunded} but completed refunds sum to {txs.refunded}")
    if pending != txs.pending:
        out.append(f"refund_pending {pending} but pending refunds sum to {txs.pending}")
    if refunded + pending > captured:
        out.append(f"refunded {refunded} and pending {pending} exceed captured {captured}")
    expected = {
        states.PAID: refunded == 0 and captured > 0,
        states.PARTIALLY_REFUNDED: 0 < refunded < captured,
        states.REFUNDED: captured > 0 and refunded == captured,
    }.get(status, captured == 0 and refunded == 0 and pending == 0)
    if not expected:
        out.append(f"state {status} does not fit captured {captured} and refunded {refunded}")
    return out


async def check(session: AsyncSession, *, publish_events: bool = False) -> list[Finding]:
    """Every order breaking an invariant (optionally publishing ``payments.ledger.discrepancy``)."""
    money_back = and_(
        or_(Transaction.kind == "refund", Transaction.kind == "reversal"),
        Transaction.status == "completed",
    )
    reserved = and_(Transaction.kind.in_(("refund", "reversal")), Transaction.status == "pending")
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
    pend = func.coalesce(func.sum(case((reserved, Transaction.amount_minor), else_=0)), 0)
    columns = (Order.id, Order.status, Order.captured_minor, Order.refunded_minor)
    rows = await session.execute(
        select(*columns, Order.refund_pending_minor, caps, refs, pend)
        .outerjoin(Transaction, Transaction.order_id == Order.id)
        .group_by(*columns, Order.refund_pending_minor)
        .order_by(Order.id)
    )
    findings = []
    for order_id, status, captured, refunded, pending, cap_sum, ref_sum, pend_sum in rows:
        problems = _problems(
            status,
            _Sums(captured, refunded, pending),
            _Sums(int(cap_sum), int(ref_sum), int(pend_sum)),
        )
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
