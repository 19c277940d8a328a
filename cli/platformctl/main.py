"""The ``platformctl`` entry point: a root group that imports commands only when run.

``platformctl --help`` imports typer and nothing heavy: core command groups are listed
from :data:`CORE_COMMANDS` (module path plus one-line help) and plugin groups from
``plugins.toml`` and entry-point names. Running ``platformctl <name> ...`` imports that
one module, or, for a plugin, boots the platform and calls the plugin's ``platform_cli``
hook (see :mod:`platformctl.plugin_commands`).
"""

from __future__ import annotations

import importlib
import os
from difflib import get_close_matches
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("platformctl.serve", "Run the API server (refuses while migrations are pending)."),
    "plugins": ("platformctl.plugins_cmd", "Inspect, enable, disable, install, create plugins."),
    "db": ("platformctl.db_cmd", "Apply, roll back and inspect each plugin's migrations."),
    "users": ("platformctl.users_cmd", "Create, list, change and delete users; reset passwords."),
    "tokens": ("platformctl.tokens_cmd", "Create, list and revoke personal API tokens."),
    "doctor": ("platformctl.doctor", "Check config, plugins, database and migrations."),
    "openapi": ("platformctl.openapi_cmd", "Print the OpenAPI document of the API."),
    "jobs": ("platformctl.jobs_cmd", "List, run and inspect background jobs."),
    "worker": ("platformctl.worker_cmd", "Run jobs from the broker (distributed runner)."),
    "scheduler": ("platformctl.scheduler_cmd", "Enqueue periodic job runs (distributed runner)."),
    "webhooks": ("platformctl.webhooks_cmd", "Add, list, remove and test outbound webhooks."),
    "events": ("platformctl.events_cmd", "Replay events to a handler that missed them."),
}
"""Core commands: name -> (module holding a ``typer.Typer`` named ``app``, short help)."""

PLUGINS_PANEL = "Plugin commands"
_CONTROL_FLOW = (typer.Exit, typer.Abort, typer.TyperException)


def load_core_command(name: str) -> Any:
    """Import the module of core command ``name`` and return its click command."""
    module = importlib.import_module(CORE_COMMANDS[name][0])
    command = typer.main.get_command(module.app)
    command.name = name
    return command


def plugin_listing() -> dict[str, str]:
    """Enabled plugins shown by ``--help``: name -> one-line help (nothing imported)."""
    from platformctl.discovery import enabled_names, installed_names

    enabled = [n for n in enabled_names() if n not in CORE_COMMANDS]
    if not enabled:
        return {}
    installed = installed_names()
    return {
        name: f"Commands of the {name} plugin."
        if name in installed
        else f"Commands of the {name} plugin (enabled but not installed)."
        for name in enabled
    }


class LazyRootGroup(TyperGroup):
    """The root group: lists commands from static data, imports one only to run it."""

    def list_commands(self, ctx: Any) -> list[str]:
        """Core commands, then the enabled plugins."""
        return [*CORE_COMMANDS, *plugin_listing()]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """A light stand-in carrying the help line (used for listings and completion)."""
        if cmd_name in CORE_COMMANDS:
            return TyperCommand(cmd_name, help=CORE_COMMANDS[cmd_name][1])
        listing = plugin_listing()
        if cmd_name in listing:
            return TyperCommand(cmd_name, help=listing[cmd_name], rich_help_panel=PLUGINS_PANEL)
        return None

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Two sections in ``--help``: the core's commands, then the plugins'."""
        core = [(name, short_help) for name, (_, short_help) in CORE_COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(core)
        plugins = list(plugin_listing().items())
        if plugins:
            with formatter.section(PLUGINS_PANEL):
                formatter.write_dl(plugins)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """The real command for ``args[0]``: a core module or a plugin's commands."""
        name = args[0]
        if name in CORE_COMMANDS:
            shared = self._shared_name_plugin_command(ctx, name, args[1:])
            if shared is not None:
                return name, shared, args[1:]
            command = load_core_command(name)
            if any(a in ("--help", "-h") for a in args[1:]):
                self._list_shared_plugin_commands(command, name)
            return name, command, args[1:]
        if name.startswith("-"):
            return super().resolve_command(ctx, args)
        if name in plugin_listing():
            from platformctl.plugin_commands import load_plugin_command

            command, platform = load_plugin_command(name)
            ctx.obj = platform
            return name, command, args[1:]
        ctx.fail(self._unknown_command_message(name))
        raise AssertionError("unreachable")  # ctx.fail raises

    def _shared_name_plugin_command(self, ctx: Any, name: str, rest: list[str]) -> Any:
        """A plugin named like a core command (``scheduler``) keeps its own subcommands.

        ``platformctl scheduler`` is the core's job scheduler; ``platformctl scheduler
        bookings list`` goes to the scheduler plugin when it is enabled and has ``bookings``.
        """
        sub = next((a for a in rest if not a.startswith("-")), None)
        if sub is None:
            return None
        from platformctl.discovery import enabled_names

        if name not in enabled_names():
            return None
        from platformctl.plugin_commands import load_plugin_command

        command, platform = load_plugin_command(name)
        if sub not in getattr(command, "commands", {}):
            return None
        ctx.obj = platform
        return command

    def _list_shared_plugin_commands(self, command: Any, name: str) -> None:
        """``platformctl scheduler --help`` also lists the scheduler plugin's commands."""
        from platformctl.discovery import enabled_names

        if name not in enabled_names():
            return
        from platformctl.plugin_commands import load_plugin_command

        try:
            plugin_command, _ = load_plugin_command(name)
        except Exception:  # the plugin's commands are unavailable: plain core help
            return
        subcommands = sorted(getattr(plugin_command, "commands", {}))
        if subcommands:
            command.epilog = (
                f"The {name} plugin's commands share this name: platformctl {name} "
                f"<command> ... with <command> one of: {', '.join(subcommands)} "
                f"(see platformctl {name} <command> --help)."
            )

    def _unknown_command_message(self, name: str) -> str:
        from platformctl.discovery import installed_names

        if name in installed_names():
            return (
                f"No such command {name!r}: plugin {name!r} is installed but not enabled "
                f"(run `platformctl plugins enable {name}`)."
            )
        matches = get_close_matches(name, [*CORE_COMMANDS, *plugin_listing()])
        hint = f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""
        return f"No such command {name!r}.{hint}"

    def invoke(self, ctx: Any) -> Any:
        """Run the command; print any failure as one line (traceback only with --debug)."""
        try:
            return super().invoke(ctx)
        except _CONTROL_FLOW:
            raise
        except BrokenPipeError:  # output piped into `head` and closed: not an error
            raise typer.Exit(0) from None
        except Exception as exc:
            if ctx.params.get("debug") or os.environ.get("PLATFORMCTL_DEBUG"):
                raise
            from platformctl.errors import CliError, describe

            typer.echo(f"error: {describe(exc)}", err=True)
            raise typer.Exit(exc.exit_code if isinstance(exc, CliError) else 1) from None


def _use_config(value: str | None) -> str | None:
    if value:
        os.environ["PLATFORM_CONFIG"] = value
    return value


app = typer.Typer(
    cls=LazyRootGroup,
    name="platformctl",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    config: str | None = typer.Option(
        None,
        "--config",
        "-c",
        metavar="FILE",
        is_eager=True,
        callback=_use_config,
        help="plugins.toml to use (default: $PLATFORM_CONFIG or ./plugins.toml).",
    ),
) -> None:
    """Administer the platform: server, plugins, database, users and tokens."""


def main() -> None:
    """Console-script entry point of ``platformctl``."""
    command = typer.main.get_command(app)
    command.main(prog_name="platformctl")
