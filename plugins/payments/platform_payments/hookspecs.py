"""Extension points the payments plugin offers to other plugins (hooks ``payments_*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from platform_core import hookspec

if TYPE_CHECKING:
    from platform_core import PlatformContext
    from platform_payments.providers.base import PaymentProvider


@hookspec
def payments_providers(ctx: PlatformContext) -> list[PaymentProvider]:
    """Return payment providers: objects implementing
    :class:`platform_payments.providers.base.PaymentProvider` (a unique ``name``, a
    ``description``, ``manual``, ``problem()`` and the async ``start``, ``capture``, ``void``,
    ``refund``, ``fetch_status``, ``parse_webhook``).

    Called for every implementation, once per platform (the providers are kept and reused,
    so they may cache tokens); a name already taken is skipped and logged. The payments
    plugin itself contributes ``manual`` and ``paypal``.
    """
    raise NotImplementedError  # a specification: pluggy never calls its body
