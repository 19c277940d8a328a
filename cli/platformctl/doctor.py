"""``platformctl doctor``: a check list of what stops the platform from serving well."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from platformctl.output import print_json, say

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

app = typer.Typer()

DB_TIMEOUT_SECONDS = 10.0
BROKER_TIMEOUT_SECONDS = 5.0


@dataclass
class Check:
    """One line of the report: what was checked, whether it passed, and the detail."""

    name: str
    status: str  # "ok", "fail", "warn" or "skip"
    detail: str = ""

    @property
    def failed(self) -> bool:
        """True when this check found a problem."""
        return self.status == "fail"


def plugin_checks(ctx: PlatformContext) -> list[Check]:
    """One check per enabled plugin: active, or isolated/missing with the reason."""
    from platform_core.manager import PluginState

    checks = []
    for rec in ctx.plugins.records.values():
        if rec.internal or not rec.enabled:
            continue
        if rec.active:
            checks.append(Check(f"plugin {rec.name}", "ok", f"{rec.version} active"))
        elif rec.state is PluginState.MISSING:
            checks.append(
                Check(f"plugin {rec.name}", "fail", f"enabled but not installed: {rec.reason}")
            )
        else:
            checks.append(Check(f"plugin {rec.name}", "fail", f"{rec.state.value}: {rec.reason}"))
    if not checks:
        checks.append(Check("plugins", "ok", "none enabled"))
    return checks


async def database_checks(ctx: PlatformContext) -> list[Check]:
    """Database reachable, no pending migrations, every plugin health check passing."""
    from platform_core import migrate
    from platform_core.health import run_checks
    from platformctl.errors import describe

    url = ctx.db.url.render_as_string(hide_password=True)
    try:
        await asyncio.wait_for(ctx.db.ping(), DB_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure to connect is the finding itself
        detail = describe(exc) if not isinstance(exc, TimeoutError) else "timed out"
        return [
            Check("database", "fail", f"{url}: {detail}"),
            Check("migrations", "skip", "database unreachable"),
            Check("health checks", "skip", "database unreachable"),
        ]
    checks = [Check("database", "ok", f"{url} reachable")]
    leftovers = migrate.leftover_tables(await migrate.table_names(ctx.db), ctx.plugins.owners())
    if leftovers:
        for plugin, tables in leftovers.items():
            checks.append(
                Check(
                    f"tables of {plugin}",
                    "fail",
                    f"left behind by {plugin}, which is not installed: {', '.join(tables)} "
                    f"(reinstall it and run `platformctl plugins remove {plugin} --drop-data`, "
                    "or drop them by hand)",
                )
            )
    else:
        checks.append(Check("leftover tables", "ok", "every table belongs to an installed plugin"))
    statuses = await migrate.status(ctx.db, ctx.state["migration_targets"])
    pending = [s.plugin for s in statuses if s.pending]
    if pending:
        checks.append(
            Check(
                "migrations",
                "fail",
                f"pending for {', '.join(pending)} (run `platformctl db upgrade`)",
            )
        )
        checks.append(Check("health checks", "skip", "migrations pending"))
        return checks
    checks.append(Check("migrations", "ok", f"{len(statuses)} plugin(s) at head"))
    _, results = await run_checks(ctx)
    for result in results:
        checks.append(
            Check(
                f"health {result['name']}",
                "ok" if result["ok"] else "fail",
                result.get("error", ""),
            )
        )
    return checks


async def broker_checks(ctx: PlatformContext) -> list[Check]:
    """The job runner in use, and with a broker configured, that Redis answers ``PING``."""
    from platform_core.background import job_runner, redact_url
    from platform_core.jobs.distributed import broker_target
    from platformctl.errors import one_line

    runner = job_runner(ctx)
    url = ctx.config.core.jobs.broker_url
    if not url:
        return [Check("job broker", "ok", runner)]
    import redis.asyncio as redis

    redis_url, _ = broker_target(url)
    shown = redact_url(redis_url)
    client = redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
    )
    try:
        await asyncio.wait_for(client.ping(), BROKER_TIMEOUT_SECONDS + 1)
    except Exception as exc:  # unreachable, refused, bad credentials: the finding itself
        detail = "timed out" if isinstance(exc, TimeoutError) else one_line(str(exc))
        return [
            Check(
                "job broker",
                "fail",
                f"{shown}: {detail or type(exc).__name__} (workers and schedulers cannot run jobs)",
            )
        ]
    finally:
        await client.aclose()
    return [Check("job broker", "ok", f"{shown} answers; {runner}")]


def collect_checks() -> list[Check]:
    """Every check, stopping early when the config or the plugins cannot load."""
    from platform_core.errors import ConfigError, StrictModeError
    from platformctl.errors import describe
    from platformctl.runtime import boot_platform, load_config, run

    try:
        cfg = load_config()
    except ConfigError as exc:
        return [Check("config", "fail", describe(exc))]
    checks = [Check("config", "ok", str(cfg.path) if cfg.path.exists() else "defaults (no file)")]
    checks += [Check("environment", "warn", warning) for warning in cfg.warnings]
    try:
        ctx = boot_platform(cfg)
    except StrictModeError as exc:
        return [*checks, Check("plugins", "fail", describe(exc))]
    checks.extend(plugin_checks(ctx))

    async def runtime_checks() -> list[Check]:
        return [*await database_checks(ctx), *await broker_checks(ctx)]

    checks.extend(run(ctx, runtime_checks()))
    return checks


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a list.")] = False,
) -> None:
    """Check config, plugins, database, migrations and health; exit 1 on any problem."""
    checks = collect_checks()
    if as_json:
        print_json([asdict(c) for c in checks])
    else:
        width = max(len(c.name) for c in checks)
        marks = {"ok": "[ok]  ", "fail": "[FAIL]", "skip": "[skip]", "warn": "[warn]"}
        for c in checks:
            say(f"{marks[c.status]} {c.name:<{width}}  {c.detail}".rstrip())
    failed = [c.name for c in checks if c.failed]
    if failed:
        if not as_json:
            say(f"{len(failed)} problem(s) found")
        raise typer.Exit(1)
    if not as_json:
        say("all checks passed")
