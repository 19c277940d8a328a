"""``platformctl <plugin> ...``: commands a plugin adds through its ``platform_cli`` hook."""

from __future__ import annotations


def test_plugin_command_runs_with_the_booted_platform(cli, fake_plugins, demo_module, enable):
    fake_plugins("demo", demo_module())
    enable("demo")
    result = cli("demo", "hello", "--name", "ops")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello ops from PlatformContext\n"


def test_plugin_group_help_lists_its_commands(cli, fake_plugins, demo_module, enable):
    fake_plugins("demo", demo_module())
    enable("demo")
    result = cli("demo", "--help")
    assert result.exit_code == 0
    assert "hello" in result.stdout
    assert "Demo plugin of the CLI tests." in result.stdout


def test_isolated_plugin_command_prints_the_reason_and_exits_1(
    cli, fake_plugins, demo_module, enable
):
    fake_plugins("demo", demo_module(requires=("ghost>=1",)))
    enable("demo")
    result = cli("demo", "hello")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: plugin 'demo' is isolated: requires ghost>=1, which is not installed\n"
    )


def test_missing_plugin_command_exits_1(cli, fake_plugins, enable):
    enable("ghost")
    result = cli("ghost", "anything")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: plugin 'ghost' is missing: enabled in")


def test_plugin_without_cli_hook_says_it_has_no_commands(cli, fake_plugins, demo_module, enable):
    fake_plugins("demo", demo_module(with_cli=False))
    enable("demo")
    result = cli("demo", "hello")
    assert result.exit_code == 1
    assert "has no commands" in result.stderr


def test_installed_plugin_command_runs_from_its_entry_point(run_platformctl, enable, plugin_site):
    enable("demo")
    result = run_platformctl("demo", "hello", env={"PYTHONPATH": plugin_site})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from the installed demo plugin\n"


def test_plugin_named_like_a_core_command_keeps_its_subcommands(
    cli, fake_plugins, demo_module, enable
):
    fake_plugins("scheduler", demo_module())
    enable("scheduler")
    result = cli("scheduler", "hello", "--name", "ops")  # the plugin's subcommand
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello ops from PlatformContext\n"
    core = cli("scheduler", "--help")  # no plugin subcommand: the core's job scheduler
    assert core.exit_code == 0
    assert "Enqueue periodic job runs" in core.stdout
