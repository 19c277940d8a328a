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
    """Call plugin ``name``'s ``platform_cli`` hook with ``cli``; False when it has none.

    Called the platform's one way (``platform_core.extension``), for this plugin alone: the
    other plugins' implementations are left out, wrappers still run around the call.
    """
    from platform_core.extension import call_hook

    impls = getattr(ctx.plugins.pm.hook, HOOK).get_hookimpls()
    if not [i for i in impls if i.plugin_name == name and not (i.wrapper or i.hookwrapper)]:
        return False
    outcome = call_hook(ctx.plugins.pm, HOOK, only={name}, cli=cli)
    if outcome.failures:  # a broken plugin must not crash the CLI
        raise CliError(f"plugin {name!r}: {outcome.failures[0].reason}")
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
