"""Background jobs of the payments plugin, thin ``(ctx)`` wrappers over the services.

- ``reconcile`` (every ``reconcile_every_seconds``): open orders are brought in line with
  their provider; unapproved ones expire; transient capture failures are retried.
- ``ledger_check`` (every ``ledger_check_every_seconds``): every order's amounts agree with
  its transactions and state; each discrepancy is published as
  ``payments.ledger.discrepancy`` (and shows in ``platformctl doctor``).
"""

from __future__ import annotations

from datetime import timedelta

from platform_core import JobSpec, PlatformContext
from platform_payments.service import ledger
from platform_payments.service.reconcile import reconcile
from platform_payments.settings import PaymentsSettings


def _settings(ctx: PlatformContext) -> PaymentsSettings:
    return ctx.settings_for("payments", PaymentsSettings)


async def reconcile_job(ctx: PlatformContext) -> dict[str, int]:
    """One reconcile pass; returns what happened to how many orders."""
    return await reconcile(ctx, _settings(ctx))


async def ledger_check_job(ctx: PlatformContext) -> dict[str, int]:
    """Check the ledger, publishing one event per order that disagrees."""
    async with ctx.db.session() as session:
        findings = await ledger.check(session, publish_events=True)
    return {"discrepancies": len(findings)}


def job_specs(ctx: PlatformContext) -> list[JobSpec]:
    """The jobs, scheduled from the settings."""
    settings = _settings(ctx)
    return [
        JobSpec(
            "reconcile",
            reconcile_job,
            every=timedelta(seconds=settings.reconcile_every_seconds),
            retries=1,
            timeout=600,
        ),
        JobSpec(
            "ledger_check",
            ledger_check_job,
            every=timedelta(seconds=settings.ledger_check_every_seconds),
            retries=1,
            timeout=600,
        ),
    ]
