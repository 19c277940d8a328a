"""``platformctl db``: each enabled plugin's migrations (own version table per plugin)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from platformctl.errors import CliError
from platformctl.output import note, print_rows, say

if TYPE_CHECKING:
    from platform_core.context import PlatformContext
    from platform_core.migrate import MigrationTarget

app = typer.Typer(
    help="Apply, roll back and inspect each plugin's migrations.", no_args_is_help=True
)

JSON_OPTION = typer.Option("--json", help="Print JSON instead of a table.")


def migration_targets(ctx: PlatformContext) -> list[MigrationTarget]:
    """The active plugins' migration targets, in dependency order."""
    return list(ctx.state["migration_targets"])


def find_target(ctx: PlatformContext, plugin: str) -> MigrationTarget:
    """The migration target of ``plugin``; ``CliError`` naming the known ones otherwise."""
    targets = {t.plugin: t for t in migration_targets(ctx)}
    if plugin not in targets:
        known = ", ".join(targets) or "none"
        raise CliError(
            f"no migrations for plugin {plugin!r} (active plugins with migrations: {known})"
        )
    return targets[plugin]


def installed_target(ctx: PlatformContext, plugin: str) -> MigrationTarget:
    """The migration target of an installed plugin, enabled or not (``db downgrade``, ``remove``).

    An enabled, active plugin's target comes from the booted platform; an installed plugin
    that is disabled (or isolated) is imported on its own and only its ``platform_models``
    hook is called, so its schema can be rolled back without enabling it.
    """
    targets = {t.plugin: t for t in migration_targets(ctx)}
    if plugin in targets:
        return targets[plugin]
    from platform_core import manager

    entry_point = manager.discover().get(plugin)
    rec = ctx.plugins.records.get(plugin)
    if entry_point is None or (rec is not None and rec.internal):
        known = ", ".join(sorted(manager.discover())) or "none"
        raise CliError(f"plugin {plugin!r} is not installed (installed: {known})")
    return standalone_target(plugin, entry_point)


def standalone_target(plugin: str, entry_point: Any) -> MigrationTarget:
    """Import one installed plugin alone and build its migration target from its models."""
    from pathlib import Path

    import pluggy

    from platform_core import hookspecs
    from platform_core.extension import call_hook
    from platform_core.migrate import MigrationTarget
    from platform_core.specs import Models

    try:
        module = entry_point.load()
        pm = pluggy.PluginManager("platform_core")
        pm.add_hookspecs(hookspecs)
        pm.register(module, name=plugin)
    except Exception as exc:  # an import error is the answer
        raise CliError(f"plugin {plugin!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    outcome = call_hook(pm, "platform_models")
    if outcome.failures:
        raise CliError(f"plugin {plugin!r}: {outcome.failures[0].reason}")
    models = outcome.results[0].value if outcome.results else None
    if not isinstance(models, Models):
        raise CliError(f"plugin {plugin!r} has no migrations (no platform_models hook)")
    return MigrationTarget(plugin, models.metadata, Path(models.migrations))


@app.command("upgrade")
def upgrade() -> None:
    """Upgrade every enabled plugin to its head revision, in dependency order."""
    from platform_core import migrate
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    done = run(ctx, migrate.upgrade(ctx.db, migration_targets(ctx)))
    say(f"upgraded: {', '.join(done)}" if done else "already up to date")


def dependents(ctx: PlatformContext, plugin: str) -> list[str]:
    """Enabled plugins that depend on ``plugin``, directly or through others, by name.

    Every plugin depends on the core.
    """
    records = [r for r in ctx.plugins.records.values() if r.enabled and not r.internal]
    rec = ctx.plugins.records.get(plugin)
    if rec is not None and rec.internal:
        return sorted(r.name for r in records)
    found: set[str] = set()
    frontier = {plugin}
    while frontier:
        frontier = {
            r.name
            for r in records
            if r.name not in found and any(q.name in frontier for q in r.requires)
        }
        found |= frontier
    found.discard(plugin)
    return sorted(found)


def confirm_destructive(yes: bool, question: str) -> None:
    """Ask on a terminal; off a terminal refuse unless ``--yes`` (a script must say so)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("stdin is not a terminal, so nobody can confirm this: pass --yes")
    typer.confirm(question, abort=True)


@app.command("downgrade")
def downgrade(
    plugin: Annotated[str, typer.Option("--plugin", "-p", help="The plugin to roll back.")],
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Target: -1, -N, a revision id or base.")
    ] = "-1",
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (required off a terminal).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Downgrade even though enabled plugins depend on it."),
    ] = False,
) -> None:
    """Roll one plugin's schema back (default: one revision); may drop its data.

    Refused while enabled plugins depend on it (the core: every enabled plugin), naming
    them, unless ``--force``; off a terminal ``--yes`` is required.
    """
    from platform_core import migrate
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    target = installed_target(ctx, plugin)
    needed_by = dependents(ctx, plugin)
    if needed_by and not force:
        run(ctx, ctx.db.dispose())
        raise CliError(
            f"refusing to downgrade {plugin}: enabled plugins depend on it: "
            f"{', '.join(needed_by)}; disable them first, or pass --force "
            "(stop the servers first: they would fail on the missing tables)"
        )
    confirm_destructive(yes, f"Downgrade {plugin} to {revision}? Data in its tables may be lost")

    async def downgrade_and_read() -> tuple[str, ...]:
        await migrate.downgrade(ctx.db, target, revision)
        return (await migrate.status(ctx.db, [target]))[0].current

    reached = run(ctx, downgrade_and_read())
    say(f"downgraded {plugin} to {', '.join(reached) or 'base'} (asked: {revision})")


@app.command("current")
def current(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Show each plugin's current and head revisions, and whether it has pending ones."""
    from platform_core import migrate
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    statuses = run(ctx, migrate.status(ctx.db, migration_targets(ctx)))
    rows = [(s.plugin, list(s.current), list(s.heads), s.pending) for s in statuses]
    print_rows(["plugin", "current", "heads", "pending"], rows, as_json=as_json)
    pending = [s.plugin for s in statuses if s.pending]
    if pending and not as_json:
        note(f"pending: {', '.join(pending)} (run `platformctl db upgrade`)")


@app.command("history")
def history(
    plugin: Annotated[str | None, typer.Option("--plugin", "-p", help="Only this plugin.")] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """List revisions, newest first, for one plugin or every enabled plugin."""
    from platform_core import migrate
    from platformctl.runtime import boot_platform

    ctx = boot_platform()
    targets = [find_target(ctx, plugin)] if plugin else migration_targets(ctx)
    rows = [
        (t.plugin, rev, down, message) for t in targets for rev, down, message in migrate.history(t)
    ]
    print_rows(["plugin", "revision", "down revision", "message"], rows, as_json=as_json)
