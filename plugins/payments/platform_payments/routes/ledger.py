"""The ledger check on demand (admins)."""

from __future__ import annotations

from fastapi import APIRouter

from platform_core import DbSession, requires_scopes
from platform_payments.schemas.ledger import FindingOut, LedgerOut
from platform_payments.service import ledger

router = APIRouter()


@router.get("/ledger", openapi_extra=requires_scopes("payments:admin"))
async def check_ledger(session: DbSession) -> LedgerOut:
    """Every order whose amounts, transactions and state disagree (none: ``ok``)."""
    findings = await ledger.check(session)
    return LedgerOut(
        ok=not findings,
        findings=[FindingOut(order_id=f.order_id, problems=f.problems) for f in findings],
    )
