"""``platformctl plugins``: disable warns about dependents, info on a disabled plugin,
install says what is already there, new --dir names the project directory."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

from platformctl import plugins_cmd

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "tests" / "example_plugin")


def test_disable_warns_that_dependents_will_be_isolated(
    cli, migrated, fake_plugins, demo_module, enable, config_file
):
    fake_plugins("base", demo_module(with_cli=False))
    fake_plugins("top", demo_module(requires=("base",), with_cli=False))
    fake_plugins("tip", demo_module(requires=("top",), with_cli=False))
    enable("base", "top", "tip")
    result = cli("plugins", "disable", "base")
    assert result.exit_code == 0, result.output
    assert "disabled base" in result.stdout
    assert "these enabled plugins require base and will be isolated: tip, top" in result.stderr


def test_disable_without_dependents_warns_nothing(cli, migrated, fake_plugins, demo_module, enable):
    fake_plugins("base", demo_module(with_cli=False))
    enable("base")
    result = cli("plugins", "disable", "base")
    assert result.exit_code == 0
    assert "isolated" not in result.output


def test_info_on_a_disabled_plugin_shows_its_metadata(cli, migrated):
    result = cli("plugins", "info", "example", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["state"] == "disabled" and info["enabled"] is False
    assert info["description"]
    assert info["distribution"] == "platform-example-notes"
    assert "example:read" in info["scopes"]
    assert info["migrations"] and info["migrations"].endswith("migrations")


def test_info_on_a_disabled_plugin_is_readable_as_text(cli, migrated):
    result = cli("plugins", "info", "example")
    assert result.exit_code == 0
    description = next(line for line in result.stdout.splitlines() if line.startswith("descr"))
    assert description.split(None, 1)[1].strip() not in ("", "-")


def _quiet_pip(monkeypatch, code=0, log="Collecting things\nSuccessfully installed x\n"):
    monkeypatch.setattr(
        plugins_cmd.subprocess,
        "run",
        lambda argv, check, **kw: types.SimpleNamespace(returncode=code, stdout=log, stderr=""),
    )


def test_install_of_an_installed_plugin_says_so_and_whether_it_is_enabled(
    cli, config_file, monkeypatch
):
    _quiet_pip(monkeypatch)
    result = cli("plugins", "install", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert "example was already installed; it is not enabled" in result.stdout
    assert "platformctl plugins enable example" in result.stdout
    assert "Collecting things" not in result.output  # pip's log stays hidden
    assert cli("plugins", "enable", "example").exit_code == 0
    again = cli("plugins", "install", EXAMPLE)
    assert "example was already installed; it is enabled" in again.stdout


def test_install_shows_the_end_of_pips_log_when_it_fails(cli, config_file, monkeypatch):
    _quiet_pip(monkeypatch, code=1, log="ERROR: No matching distribution found for nope\n")
    result = cli("plugins", "install", "nope")
    assert result.exit_code == 1
    assert "No matching distribution found for nope" in result.stderr
    assert result.stderr.endswith("error: pip install nope failed (exit status 1)\n")


def test_new_with_a_dir_ending_in_the_name_creates_that_directory(cli, tmp_path, monkeypatch):
    calls = []

    def create_plugin(name: str, dest: Path) -> Path:
        calls.append((name, dest))
        return dest / name

    scaffold = types.ModuleType("platform_core.scaffold")
    scaffold.create_plugin = create_plugin  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "platform_core.scaffold", scaffold)
    result = cli("plugins", "new", "myplugin", "--dir", str(tmp_path / "myplugin"))
    assert result.exit_code == 0, result.output
    assert calls == [("myplugin", tmp_path)]
    assert f"created {tmp_path / 'myplugin'}\n" in result.stdout


def test_new_with_a_dir_ending_in_the_name_really_scaffolds_there(cli, tmp_path):
    result = cli("plugins", "new", "myplugin", "--dir", str(tmp_path / "myplugin"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "myplugin" / "pyproject.toml").is_file()
    assert not (tmp_path / "myplugin" / "myplugin").exists()
