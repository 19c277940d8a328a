"""``platformctl <plugin> ...``: boot the platform and build one plugin's command group.

Only the invoked plugin's ``platform_cli(cli)`` hook is called, with a fresh ``typer.Typer``
mounted under the plugin's name. A plugin that is isolated or missing gets no commands:
running them prints the reason and exits 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from platformctl.errors import CliError

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

HOOK = "platform_cli"


def call_cli_hook(ctx: PlatformContext, name: str, cli: typer.Typer) -> bool:
    """Call plugin ``name``'s ``platform_cli`` hook with ``cli``; False when it has none."""
    impls = [i for i in getattr(ctx.plugins.pm.hook, HOOK).get_hookimpls() if i.plugin_name == name]
    if not impls:
        return False
    arguments = {"cli": cli}
    for impl in impls:
        try:
            impl.function(**{arg: arguments[arg] for arg in impl.argnames})
        except Exception as exc:  # a broken plugin must not crash the CLI
            raise CliError(f"plugin {name!r}: {HOOK}() raised {type(exc).__name__}: {exc}") from exc
    return True


def load_plugin_command(name: str) -> tuple[Any, PlatformContext]:
    """The click group of plugin ``name``'s commands and the booted platform.

    Raises ``CliError`` when the plugin is not active (with its reason) or adds no commands.
    """
    from platformctl.runtime import boot_platform

    ctx = boot_platform()
    rec = ctx.plugins.records.get(name)
    if rec is None or not rec.enabled:
        raise CliError(f"plugin {name!r} is not enabled (run `platformctl plugins enable {name}`)")
    if not rec.active:
        raise CliError(f"plugin {name!r} is {rec.state.value}: {rec.reason}")
    description = rec.meta.description or f"Commands of the {name} plugin."
    cli = typer.Typer(name=name, help=description, no_args_is_help=True)
    if not call_cli_hook(ctx, name, cli):
        raise CliError(f"plugin {name!r} has no commands (it implements no {HOOK} hook)")
    if not (cli.registered_commands or cli.registered_groups):
        raise CliError(f"plugin {name!r} has no commands ({HOOK}() added none)")
    group = typer.main.get_group(cli)
    group.name = name
    return group, ctx
