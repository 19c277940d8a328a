"""Response models of the ledger check."""

from __future__ import annotations

from pydantic import BaseModel


class FindingOut(BaseModel):
    """An order whose amounts, transactions and state disagree."""

    order_id: int
    problems: list[str]


class LedgerOut(BaseModel):
    """The ledger check: ``ok`` when no order breaks an invariant."""

    ok: bool
    findings: list[FindingOut]
