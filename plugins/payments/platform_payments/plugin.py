"""Hook implementations of the payments plugin: wiring only, the logic lives elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from fastapi import APIRouter
from pydantic import BaseModel

from platform_core import (
    HealthCheck,
    JobSpec,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
    hookimpl,
)

if TYPE_CHECKING:
    import typer

    from platform_core import PlatformContext

EVERYONE = ("admin", "operator", "member")


@hookimpl
def platform_plugin_meta() -> PluginMeta:
    """Needs nothing but the core 0.1.x."""
    return PluginMeta(
        requires=[],
        core=">=0.1,<0.2",
        description="Payments: orders, PayPal and manual providers, refunds, verified webhooks",
    )


@hookimpl
def platform_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Offer ``payments_providers`` to other plugins."""
    from platform_payments import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def payments_providers(ctx: PlatformContext) -> list[Any]:
    """The built-in providers: ``manual`` and ``paypal``."""
    from platform_payments.providers.manual import ManualProvider
    from platform_payments.providers.paypal import PayPalProvider
    from platform_payments.settings import PaymentsSettings

    settings = ctx.settings_for("payments", PaymentsSettings)
    return [ManualProvider(), PayPalProvider(settings.paypal)]


@hookimpl
def platform_settings() -> type[BaseModel]:
    """``[plugins.payments]`` settings."""
    from platform_payments.settings import PaymentsSettings

    return PaymentsSettings


@hookimpl
def platform_models() -> Models:
    """The ``payments_*`` tables and their migrations."""
    from platform_payments.models import PaymentsBase

    return Models(PaymentsBase.metadata, Path(__file__).resolve().parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """Members see and pay their own orders; admins see all, mark paid and refund."""
    return [
        Permission("payments:read", "see your orders and the providers", EVERYONE),
        Permission("payments:write", "create, pay, capture and cancel your orders", EVERYONE),
        Permission("payments:refund", "refund paid orders", ("admin",)),
        Permission("payments:admin", "see every order, mark manual orders paid", ("admin",)),
    ]


@hookimpl
def platform_routes() -> list[APIRouter]:
    """Orders, providers, webhooks and the ledger under ``/api/payments``."""
    from platform_payments.routes import router

    return [router]


@hookimpl
def platform_jobs(ctx: PlatformContext) -> list[JobSpec]:
    """``reconcile`` and ``ledger_check``."""
    from platform_payments.jobs import job_specs

    return job_specs(ctx)


@hookimpl
def platform_notification_rules() -> list[NotificationRule]:
    """Buyers hear when their order is paid, refunded, failed or expired."""
    from platform_payments.notify import rules

    return rules()


@hookimpl
def platform_cli(cli: typer.Typer) -> None:
    """``platformctl payments orders|providers|ledger``."""
    from platform_payments.cli import register

    register(cli)


@hookimpl
async def platform_shutdown(ctx: PlatformContext) -> None:
    """Close the providers' HTTP connections."""
    from platform_payments.service.providers import close_providers

    await close_providers(ctx)


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """The ledger agrees with the transactions: a diagnostic for ``doctor``, not ``/readyz``
    (a full audit on every probe would be costly, and a discrepancy needs a person, not
    every instance out of rotation; the ledger job raises the event)."""

    async def ledger() -> None:
        from platform_payments.service.ledger import check

        async with ctx.db.session() as session:
            findings = await check(session)
        if findings:
            shown = ", ".join(str(f.order_id) for f in findings[:5])
            raise RuntimeError(
                f"{len(findings)} order(s) disagree with their transactions: {shown}"
            )

    return [HealthCheck("ledger", ledger, timeout=5.0, readiness=False)]
