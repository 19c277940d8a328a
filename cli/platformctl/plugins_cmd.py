"""``platformctl plugins``: what is installed and enabled, and changing that."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from platformctl.errors import CliError
from platformctl.output import cell, note, print_json, print_rows, say

if TYPE_CHECKING:
    from platform_core.context import PlatformContext
    from platform_core.manager import PluginRecord

app = typer.Typer(
    help="List, inspect, enable, disable, install and create plugins.", no_args_is_help=True
)

NAME_ARGUMENT = typer.Argument(help="The plugin's name (its entry-point name).")
INSTALL_HINT = "install it with `platformctl plugins install SPEC`"


def _config_path() -> Path:
    from platform_core.config import config_path

    return config_path()


def installed_plugins() -> dict[str, Any]:
    """Installed plugins by name (entry points; nothing imported), caches refreshed."""
    from platform_core import manager

    importlib.invalidate_caches()
    return manager.discover()


def _plugin_records(ctx: PlatformContext) -> list[PluginRecord]:
    return [r for r in ctx.plugins.records.values() if not r.internal]


@app.command("list")
def list_plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List installed and enabled plugins with version, state and the reason of a failure."""
    from platformctl.runtime import boot_platform

    ctx = boot_platform()
    rows = [
        (r.name, r.version, r.enabled, r.state.value, r.reason)
        for r in sorted(_plugin_records(ctx), key=lambda r: r.name)
    ]
    print_rows(["name", "version", "enabled", "state", "reason"], rows, as_json=as_json)


def plugin_details(ctx: PlatformContext, name: str) -> dict[str, Any]:
    """Everything known about plugin ``name``; ``CliError`` when it is unknown."""
    rec = ctx.plugins.records.get(name)
    if rec is None or rec.internal:
        known = ", ".join(sorted(r.name for r in _plugin_records(ctx))) or "none"
        raise CliError(f"unknown plugin {name!r} (known: {known}); {INSTALL_HINT}")
    entry_point = installed_plugins().get(name)
    targets = {t.plugin: t for t in ctx.state["migration_targets"]}
    if not rec.active and entry_point is not None:
        return standalone_details(ctx, rec, entry_point)
    return {
        "name": rec.name,
        "version": rec.version,
        "distribution": rec.distribution,
        "entry_point": entry_point.value if entry_point is not None else None,
        "enabled": rec.enabled,
        "state": rec.state.value,
        "reason": rec.reason,
        "description": rec.meta.description,
        "requires": [str(r) for r in rec.requires],
        "platform_core": rec.meta.core,
        "scopes": sorted(s for s in ctx.permissions if s.split(":")[0] == name),
        "jobs": sorted(j for j in ctx.jobs if j.split(".")[0] == name),
        "migrations": str(targets[name].directory) if name in targets else None,
        "settings": sorted(ctx.config.plugin_table(name)),
    }


def standalone_details(ctx: PlatformContext, rec: PluginRecord, entry_point: Any) -> dict[str, Any]:
    """What an installed plugin that is not loaded declares, read by importing it alone.

    A disabled (or isolated) plugin contributes nothing to the running platform; its
    metadata, scopes, settings and migrations are still worth showing before enabling it.
    """
    import pluggy

    from platform_core import hookspecs
    from platform_core.extension import call_hook
    from platform_core.specs import Models, Permission, PluginMeta

    details: dict[str, Any] = {
        "name": rec.name,
        "version": rec.version,
        "distribution": rec.distribution,
        "entry_point": entry_point.value,
        "enabled": rec.enabled,
        "state": rec.state.value,
        "reason": rec.reason,
    }
    try:
        module = entry_point.load()
        pm = pluggy.PluginManager("platform_core")
        pm.add_hookspecs(hookspecs)
        pm.register(module, name=rec.name)
    except Exception as exc:  # the import error is what there is to show
        details["reason"] = rec.reason or f"cannot be imported: {type(exc).__name__}: {exc}"
        return details

    def first(hook: str, **kwargs: Any) -> Any:
        outcome = call_hook(pm, hook, **kwargs)
        return outcome.results[0].value if outcome.results else None

    meta = first("platform_plugin_meta")
    meta = meta if isinstance(meta, PluginMeta) else PluginMeta()
    declared = [p for p in first("platform_permissions") or [] if isinstance(p, Permission)]
    scopes = {p.scope for p in declared} | {f"{rec.name}:read", f"{rec.name}:write"}
    models = first("platform_models")
    settings_model = first("platform_settings")
    fields = getattr(settings_model, "model_fields", {})
    details |= {
        "description": meta.description,
        "requires": list(meta.requires),
        "platform_core": meta.core,
        "scopes": sorted(scopes),
        "jobs": "(listed once enabled)",
        "migrations": str(models.migrations) if isinstance(models, Models) else None,
        "settings": sorted(ctx.config.plugin_table(rec.name)),
        "settings_keys": sorted(fields),
    }
    return details


@app.command("info")
def info(
    name: Annotated[str, NAME_ARGUMENT],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one plugin: version, distribution, state, requirements, scopes, jobs."""
    from platformctl.runtime import boot_platform

    details = plugin_details(boot_platform(), name)
    if as_json:
        print_json(details)
        return
    width = max(len(k) for k in details)
    for key, value in details.items():
        say(f"{key.replace('_', ' '):<{width}}  {cell(value)}")


@app.command("enable")
def enable(name: Annotated[str, NAME_ARGUMENT]) -> None:
    """Add an installed plugin to ``[plugins] enabled`` in plugins.toml."""
    from platformctl.plugins_toml import set_enabled

    installed = installed_plugins()
    if name not in installed:
        known = ", ".join(sorted(installed)) or "none"
        raise CliError(f"plugin {name!r} is not installed (installed: {known}); {INSTALL_HINT}")
    path = _config_path()
    if not set_enabled(path, name, True):
        say(f"{name} is already enabled in {path}")
        return
    say(f"enabled {name} in {path}")
    if _schema_at_head(name, installed[name]):
        note("its tables are already at the head revision: restart the server to apply")
    else:
        note("next: `platformctl db upgrade` to create its tables, then restart the server")


def _schema_at_head(name: str, entry_point: Any) -> bool:
    """True when the plugin has no migrations or its tables are at their head revision.

    False when they are not, or when that cannot be told (the hint to upgrade is harmless).
    """
    import asyncio

    from platform_core import migrate
    from platform_core.db import Database
    from platformctl.db_cmd import standalone_target
    from platformctl.runtime import load_config

    try:
        target = standalone_target(name, entry_point)
    except CliError as exc:
        return "has no migrations" in str(exc)

    async def check() -> bool:
        db = Database(load_config().core.database_url)
        try:
            return not (await migrate.status(db, [target]))[0].pending
        finally:
            await db.dispose()

    try:
        return asyncio.run(check())
    except Exception:  # database unreachable: say what to run
        return False


@app.command("remove")
def remove(
    name: Annotated[str, NAME_ARGUMENT],
    drop_data: Annotated[
        bool,
        typer.Option(
            "--drop-data", help="Downgrade its migrations to base: drops its tables and data."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Remove it even when enabled plugins require it.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Take a plugin out of the platform before ``pip uninstall``: disable it, maybe drop its data.

    With ``--drop-data`` its migrations are downgraded to base while it is still installed
    and its version table dropped, then it is disabled. Without, it is only disabled and its
    tables and data are kept. Refused while enabled plugins require it, unless ``--force``.
    """
    from platform_core import migrate
    from platformctl.db_cmd import confirm_destructive, installed_target
    from platformctl.plugins_toml import enabled_plugins, set_enabled
    from platformctl.runtime import boot_platform, run

    path = _config_path()
    installed = installed_plugins()
    enabled = name in enabled_plugins(path)
    if name not in installed and not enabled:
        known = ", ".join(sorted(installed)) or "none"
        raise CliError(f"plugin {name!r} is neither installed nor enabled (installed: {known})")
    ctx = boot_platform()
    rec = ctx.plugins.records.get(name)
    if rec is not None and rec.internal:
        raise CliError(f"{name!r} is part of the platform's core and cannot be removed")
    dependents = sorted(
        r.name
        for r in ctx.plugins.records.values()
        if r.enabled and r.name != name and any(q.name == name for q in r.requires)
    )
    if dependents and not force:
        raise CliError(
            f"enabled plugins require {name}: {', '.join(dependents)}; remove or disable them "
            "first, or pass --force (they will be isolated)"
        )
    if drop_data:
        if name not in installed:
            raise CliError(
                f"plugin {name!r} is not installed: its migrations cannot run; reinstall it to "
                "drop its data, or drop its tables by hand (`platformctl doctor` lists them)"
            )
        target = installed_target(ctx, name)
        confirm_destructive(yes, f"Drop every table and all data of {name}?")

        async def drop() -> tuple[bool, list[str]]:
            await migrate.downgrade(ctx.db, target, "base")
            dropped = await migrate.drop_version_table(ctx.db, target)
            left = [t for t in await migrate.table_names(ctx.db) if t.startswith(f"{name}_")]
            return dropped, left

        dropped, left = run(ctx, drop())
        say(f"downgraded {name} to base" + (f", dropped {target.version_table}" if dropped else ""))
        if left:
            note(f"tables its migrations did not drop: {', '.join(left)}")
    else:
        run(ctx, ctx.db.dispose())
    if set_enabled(path, name, False):
        say(f"disabled {name} in {path}")
    if not drop_data:
        say(
            f"its tables and data are kept (`platformctl plugins remove {name} --drop-data` "
            "deletes them while it is installed)"
        )
    if dependents:
        note(f"these plugins require it and will be isolated: {', '.join(dependents)}")
    if rec is not None and rec.distribution and name in installed:
        note(f"now: pip uninstall {rec.distribution}")
    note("restart the server to apply")


@app.command("disable")
def disable(name: Annotated[str, NAME_ARGUMENT]) -> None:
    """Remove a plugin from ``[plugins] enabled``; its tables and data stay untouched."""
    from platformctl.plugins_toml import set_enabled

    path = _config_path()
    needed_by = _dependents_of(name)
    if not set_enabled(path, name, False):
        say(f"{name} is not enabled in {path}")
        return
    say(f"disabled {name} in {path} (its tables and data are kept)")
    if needed_by:
        note(
            f"warning: these enabled plugins require {name} and will be isolated: "
            f"{', '.join(needed_by)} (disable them too, or enable {name} again)"
        )
    note("restart the server to apply")


def _dependents_of(name: str) -> list[str]:
    """Enabled plugins that require ``name`` (directly or not); [] when that cannot be told."""
    from platform_core.errors import ConfigError, StrictModeError
    from platformctl.db_cmd import dependents
    from platformctl.runtime import boot_platform

    try:
        ctx = boot_platform()
    except (ConfigError, StrictModeError):
        return []
    rec = ctx.plugins.records.get(name)
    if rec is None or rec.internal:
        return []
    return dependents(ctx, name)


def pip_install(specs: list[str], *, upgrade: bool, verbose: bool = False) -> None:
    """``pip install`` into this interpreter's environment; ``CliError`` when pip fails.

    pip's log is shown only with ``verbose`` or when pip fails (its last lines).
    """
    command = [sys.executable, "-m", "pip", "install", *(["--upgrade"] if upgrade else []), *specs]
    note(f"running: pip install {' '.join(specs)}")
    output = ""
    if verbose:
        returncode = subprocess.run(command, check=False).returncode
    else:
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        returncode = result.returncode
        output = (result.stdout or "") + (result.stderr or "")
    if returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        if tail:
            note(tail)
        raise CliError(f"pip install {' '.join(specs)} failed (exit status {returncode})")


def _spec_distribution(spec: str) -> str | None:
    """The distribution name a pip spec installs (a project directory or a requirement)."""
    import tomllib

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    path = Path(spec)
    if (path / "pyproject.toml").is_file():
        try:
            data = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))
            return str(canonicalize_name(data["project"]["name"]))
        except (KeyError, tomllib.TOMLDecodeError, OSError):
            return None
    try:
        return str(canonicalize_name(Requirement(spec).name))
    except InvalidRequirement:
        return None


def plugins_of(specs: list[str], installed: dict[str, Any]) -> list[str]:
    """The installed plugins that the distributions named by ``specs`` provide."""
    from packaging.utils import canonicalize_name

    wanted = {d for d in (_spec_distribution(s) for s in specs) if d}
    found = []
    for name, ep in installed.items():
        dist = getattr(ep, "dist", None)
        if dist is not None and canonicalize_name(dist.metadata["Name"] or "-") in wanted:
            found.append(name)
    return sorted(found)


@app.command("install")
def install(
    specs: Annotated[list[str], typer.Argument(help="pip requirement(s): name, path or URL.")],
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="Upgrade if present.")] = False,
    no_enable: Annotated[
        bool, typer.Option("--no-enable", help="Install only; do not enable.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show pip's log.")] = False,
) -> None:
    """pip-install plugin distribution(s) here, then enable the plugins they add."""
    from platformctl.plugins_toml import enabled_plugins, set_enabled

    before = set(installed_plugins())
    pip_install(specs, upgrade=upgrade, verbose=verbose)
    after = installed_plugins()
    added = sorted(set(after) - before)
    path = _config_path()
    if not added:
        present = plugins_of(specs, after)
        if not present:
            note(f"{' '.join(specs)} added no plugin (entry-point group platform_core.plugins)")
            return
        enabled = enabled_plugins(path)
        for name in present:
            state = (
                "enabled"
                if name in enabled
                else f"not enabled (run `platformctl plugins enable {name}`)"
            )
            say(f"{name} was already installed; it is {state}")
        return
    for name in added:
        if no_enable:
            say(f"installed {name} (not enabled)")
        else:
            set_enabled(path, name, True)
            say(f"installed and enabled {name} in {path}")
    if not no_enable:
        note("next: `platformctl db upgrade`, then restart the server")


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The new plugin's name (lowercase, digits, _).")],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "-d",
            help="Parent directory (default ./plugins or .); a path ending in the name itself "
            "is the project directory.",
        ),
    ] = None,
) -> None:
    """Scaffold a new plugin distribution from the platform's template."""
    try:
        from platform_core.scaffold import create_plugin
    except ImportError as exc:
        raise CliError(f"this platform-core has no plugin scaffold ({exc})") from exc

    installed = installed_plugins()
    if name in installed:
        raise CliError(
            f"a plugin named {name!r} is already installed "
            f"({installed[name].value}); choose another name"
        )
    if directory is None:
        directory = Path("plugins") if Path("plugins").is_dir() else Path(".")
    elif directory.name == name and not (directory / name).exists():
        directory = directory.parent  # `--dir ../shop` means ../shop, not ../shop/shop
    created = create_plugin(name, directory)
    say(f"created {created}")
    note("next steps:")
    note(f"  pip install -e {created}")
    note(f"  platformctl plugins enable {name}")
    note("  platformctl db upgrade")
