"""The root command: a fast, lazy ``--help``, plugin listings and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from platformctl import discovery
from platformctl.main import CORE_COMMANDS

HEAVY_MODULES = [
    "fastapi",
    "sqlalchemy",
    "uvicorn",
    "pydantic",
    "alembic",
    "platform_core",
    "platformctl_tests_dist_plugin",
]

PROBE = """
import json, sys
from platformctl.main import main
sys.argv = ["platformctl", "--help"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_help_imports_no_heavy_module_nor_plugin(config_file, enable, plugin_site):
    enable("demo")
    probe = PROBE.format(heavy=HEAVY_MODULES)
    env = {"PLATFORM_CONFIG": str(config_file), "PYTHONPATH": str(plugin_site)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    *help_lines, imported = result.stdout.strip().splitlines()
    assert "demo" in "\n".join(help_lines)
    assert json.loads(imported) == []


def test_help_lists_enabled_plugins_in_their_own_section(cli, enable, fake_plugins):
    fake_plugins("demo")
    fake_plugins("dormant")
    enable("demo", "ghost")
    result = cli("--help")
    assert result.exit_code == 0
    core_part, plugin_part = result.stdout.split("Plugin commands:")
    assert all(name in core_part for name in CORE_COMMANDS)
    assert "demo" in plugin_part
    assert "ghost" in plugin_part and "not installed" in plugin_part
    assert "dormant" not in result.stdout


def test_help_without_config_file_lists_core_commands(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_CONFIG", str(tmp_path / "absent.toml"))
    result = cli("--help")
    assert result.exit_code == 0
    assert "Plugin commands" not in result.stdout
    assert "serve" in result.stdout


@pytest.mark.parametrize("name", list(CORE_COMMANDS))
def test_core_command_help_loads_its_module(cli, name):
    result = cli(name, "--help")
    assert result.exit_code == 0, result.output
    assert f"platformctl {name}" in result.stdout


def test_entry_point_group_matches_the_core():
    from platform_core.manager import ENTRY_POINT_GROUP

    assert discovery.ENTRY_POINT_GROUP == ENTRY_POINT_GROUP


def test_unknown_command_suggests_a_close_match(cli):
    result = cli("doctr")
    assert result.exit_code == 2
    assert "Did you mean 'doctor'?" in result.output


def test_disabled_plugin_command_hints_enable(cli, fake_plugins):
    fake_plugins("dormant")
    result = cli("dormant", "run")
    assert result.exit_code == 2
    assert "platformctl plugins enable dormant" in result.output


def test_config_error_prints_one_line_without_traceback(run_platformctl, config_file):
    config_file.write_text("[core\nbroken = \n", encoding="utf-8")
    result = run_platformctl("users", "list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {config_file}: not valid TOML")


def test_config_option_selects_the_config_file(run_platformctl, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text("[core]\nunknown_key = 1\n", encoding="utf-8")
    result = run_platformctl("--config", str(other), "db", "current")
    assert result.returncode == 1
    assert "other.toml [core] key 'unknown_key'" in result.stderr


def test_debug_flag_lets_the_exception_through(cli, config_file):
    config_file.write_text("[core]\nunknown_key = 1\n", encoding="utf-8")
    from platform_core.errors import ConfigError

    result = cli("--debug", "users", "list")
    assert isinstance(result.exception, ConfigError)
