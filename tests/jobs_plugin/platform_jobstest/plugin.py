"""Hook implementations: settings, jobs and an event handler that records deliveries."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from platform_core import EventHandler, JobSpec, PlatformContext, PluginMeta, hookimpl


class JobsTestSettings(BaseModel):
    """``[plugins.jobstest]``."""

    record_file: str | None = None
    tick_ms: int = 1000
    slow_seconds: float = 4.0


def _record(ctx: PlatformContext, kind: str, run: Any) -> None:
    settings = ctx.settings_for("jobstest", JobsTestSettings)
    if settings.record_file:
        line = f"{kind} {run.scheduled_for.isoformat()} {run.id} {run.attempt} {os.getpid()}\n"
        with open(settings.record_file, "a", encoding="utf-8") as fh:
            fh.write(line)


async def tick(ctx: PlatformContext, run: Any) -> str:
    """Record the slot this run is for."""
    _record(ctx, "tick", run)
    return str(run.scheduled_for.isoformat())


async def slow(ctx: PlatformContext, run: Any) -> str:
    """Record its start, sleep ``slow_seconds``, record its end."""
    _record(ctx, "slow-start", run)
    await asyncio.sleep(ctx.settings_for("jobstest", JobsTestSettings).slow_seconds)
    _record(ctx, "slow-end", run)
    return "slept"


async def record_event(ctx: PlatformContext, event: Any) -> None:
    """Record the delivery of a ``jobstest.*`` event: ``event <id> <pid>``."""
    settings = ctx.settings_for("jobstest", JobsTestSettings)
    if settings.record_file:
        with open(settings.record_file, "a", encoding="utf-8") as fh:
            fh.write(f"event {event.id} {os.getpid()}\n")
    await asyncio.sleep(0.005)  # widen the window in which another process could race


async def hello() -> dict[str, str]:
    """Return a greeting."""
    return {"hello": "world"}


async def noop() -> None:
    """Do nothing."""


@hookimpl
def platform_plugin_meta() -> PluginMeta:
    """Metadata."""
    return PluginMeta(description="jobs test plugin")


@hookimpl
def platform_settings() -> type[BaseModel]:
    """The settings model."""
    return JobsTestSettings


@hookimpl
def platform_jobs(ctx: PlatformContext) -> list[JobSpec]:
    """A periodic job and on-demand ones."""
    settings = ctx.settings_for("jobstest", JobsTestSettings)
    return [
        JobSpec("tick", tick, every=timedelta(milliseconds=settings.tick_ms)),
        JobSpec("slow", slow, timeout=60),
        JobSpec("hello", hello),
        JobSpec("noop", noop, overlap=True),
    ]


@hookimpl
def platform_event_handlers(ctx: PlatformContext) -> list[EventHandler]:
    """Record every ``jobstest.*`` event delivered."""
    return [EventHandler("jobstest.*", record_event, name="record")]
