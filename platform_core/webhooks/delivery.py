"""Webhook delivery loop (stub until webhooks land)."""

from __future__ import annotations

import asyncio

from platform_core.context import PlatformContext


async def run_webhook_deliveries(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """Send due webhook deliveries until ``stop`` is set."""
    await stop.wait()
