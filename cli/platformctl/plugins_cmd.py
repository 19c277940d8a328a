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
    note("next: `platformctl db upgrade` to create its tables, then restart the server")


@app.command("disable")
def disable(name: Annotated[str, NAME_ARGUMENT]) -> None:
    """Remove a plugin from ``[plugins] enabled``; its tables and data stay untouched."""
    from platformctl.plugins_toml import set_enabled

    path = _config_path()
    if not set_enabled(path, name, False):
        say(f"{name} is not enabled in {path}")
        return
    say(f"disabled {name} in {path} (its tables and data are kept)")
    note("restart the server to apply")


def pip_install(specs: list[str], *, upgrade: bool) -> None:
    """``pip install`` into this interpreter's environment; ``CliError`` when pip fails."""
    command = [sys.executable, "-m", "pip", "install", *(["--upgrade"] if upgrade else []), *specs]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise CliError(f"pip install {' '.join(specs)} failed (exit status {result.returncode})")


@app.command("install")
def install(
    specs: Annotated[list[str], typer.Argument(help="pip requirement(s): name, path or URL.")],
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="Upgrade if present.")] = False,
    no_enable: Annotated[
        bool, typer.Option("--no-enable", help="Install only; do not enable.")
    ] = False,
) -> None:
    """pip-install plugin distribution(s) here, then enable the plugins they add."""
    from platformctl.plugins_toml import set_enabled

    before = set(installed_plugins())
    pip_install(specs, upgrade=upgrade)
    added = sorted(set(installed_plugins()) - before)
    if not added:
        note(f"{' '.join(specs)} added no new plugin (entry-point group platform_core.plugins)")
        return
    path = _config_path()
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
        Path | None, typer.Option("--dir", "-d", help="Parent directory; default ./plugins or .")
    ] = None,
) -> None:
    """Scaffold a new plugin distribution from the platform's template."""
    try:
        from platform_core.scaffold import create_plugin
    except ImportError as exc:
        raise CliError(f"this platform-core has no plugin scaffold ({exc})") from exc

    if directory is None:
        directory = Path("plugins") if Path("plugins").is_dir() else Path(".")
    created = create_plugin(name, directory)
    say(f"created {created}")
    note("next steps:")
    note(f"  pip install -e {created}")
    note(f"  platformctl plugins enable {name}")
    note("  platformctl db upgrade")
