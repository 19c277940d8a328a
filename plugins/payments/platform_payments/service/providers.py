"""The providers of the running platform: collected once through ``payments_providers``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from platform_core import Conflict, NotFound, PlatformContext
from platform_payments.providers.base import PaymentProvider

log = logging.getLogger("platform_payments.providers")
_STATE = "payments"


def registry(ctx: PlatformContext) -> dict[str, PaymentProvider]:
    """``{name: provider}`` of every implementation of ``payments_providers`` (built once)."""
    state: dict[str, Any] = ctx.state.setdefault(_STATE, {})
    found: dict[str, PaymentProvider] | None = state.get("providers")
    if found is None:
        found = {}
        for result in ctx.plugins.call_extension("payments_providers", ctx=ctx):
            for provider in result.value or []:
                name = getattr(provider, "name", None)
                if not isinstance(provider, PaymentProvider) or not name:
                    log.warning(
                        "skipped an invalid payment provider", extra={"plugin": result.plugin}
                    )
                elif name in found:
                    log.warning(
                        "skipped a duplicate payment provider",
                        extra={"plugin": result.plugin, "provider": name},
                    )
                else:
                    found[name] = provider
        state["providers"] = found
    return found


def get_provider(ctx: PlatformContext, name: str) -> PaymentProvider:
    """The provider ``name``; 404 when no plugin offers it."""
    provider = registry(ctx).get(name)
    if provider is None:
        raise NotFound(f"no payment provider named {name!r}")
    return provider


def ready_provider(ctx: PlatformContext, name: str) -> PaymentProvider:
    """The provider ``name`` when it can take payments; 409 with its problem otherwise."""
    provider = get_provider(ctx, name)
    problem = provider.problem()
    if problem:
        raise Conflict(problem, provider=name)
    return provider


@dataclass(frozen=True)
class ProviderInfo:
    """A provider as listed: name, description, manual, configured and why not."""

    name: str
    description: str
    manual: bool
    configured: bool
    problem: str | None


def list_providers(ctx: PlatformContext) -> list[ProviderInfo]:
    """Every provider, by name, with whether it is configured (never its credentials)."""
    out = []
    for name, provider in sorted(registry(ctx).items()):
        problem = provider.problem()
        out.append(
            ProviderInfo(name, provider.description, provider.manual, problem is None, problem)
        )
    return out


async def close_providers(ctx: PlatformContext) -> None:
    """Let providers holding connections close them (those with an ``aclose``)."""
    found: dict[str, PaymentProvider] = ctx.state.get(_STATE, {}).get("providers") or {}
    for provider in found.values():
        close = getattr(provider, "aclose", None)
        if close is not None:
            try:
                await close()
            except Exception as exc:  # shutdown goes on for the others
                log.warning(
                    "closing a provider failed", extra={"provider": provider.name, "why": repr(exc)}
                )
