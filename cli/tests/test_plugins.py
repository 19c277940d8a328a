"""``platformctl plugins``: list, info, enable/disable in plugins.toml, install, new."""

from __future__ import annotations

import json
import os
import sys
import tomllib
import types
from pathlib import Path

import pytest

from platformctl import plugins_cmd


def _enabled(config_file: Path) -> list[str]:
    return tomllib.loads(config_file.read_text(encoding="utf-8"))["plugins"]["enabled"]


def _plugins(cli) -> dict[str, dict]:
    result = cli("plugins", "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_plugins_list_shows_installed_but_disabled_plugin_without_importing(cli, fake_plugins):
    fake_plugins("dormant")  # its module does not exist: importing it would isolate it
    assert _plugins(cli)["dormant"] == {
        "name": "dormant",
        "version": "0",
        "enabled": False,
        "state": "disabled",
        "reason": "",
    }


def test_plugins_list_shows_why_a_plugin_is_isolated(cli, fake_plugins, demo_module, enable):
    fake_plugins("demo", demo_module(requires=("ghost>=1",)))
    enable("demo")
    demo = _plugins(cli)["demo"]
    assert demo["state"] == "isolated"
    assert demo["reason"] == "requires ghost>=1, which is not installed"


def test_plugins_list_table_names_each_plugin(cli, fake_plugins, demo_module, enable):
    fake_plugins("demo", demo_module())
    enable("demo")
    result = cli("plugins", "list")
    row = next(line.split() for line in result.stdout.splitlines() if "demo" in line)
    assert row[:4] == ["demo", "0", "yes", "active"]


def test_plugins_info_describes_an_active_plugin(cli, fake_plugins, demo_module, enable):
    fake_plugins("demo", demo_module())
    enable("demo")
    result = cli("plugins", "info", "demo", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["state"] == "active"
    assert info["description"] == "Demo plugin of the CLI tests."
    assert info["scopes"] == ["demo:read", "demo:write"]


def test_plugins_info_unknown_plugin_fails(cli, fake_plugins):
    result = cli("plugins", "info", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown plugin 'nope'")


def test_plugins_enable_keeps_comments_and_layout(cli, config_file, fake_plugins):
    fake_plugins("demo")
    before = config_file.read_text(encoding="utf-8")
    result = cli("plugins", "enable", "demo")
    assert result.exit_code == 0, result.output
    after = config_file.read_text(encoding="utf-8")
    assert after == before.replace("enabled = []", 'enabled = ["demo"]')


def test_plugins_enable_twice_leaves_one_entry(cli, config_file, fake_plugins):
    fake_plugins("demo")
    cli("plugins", "enable", "demo")
    result = cli("plugins", "enable", "demo")
    assert result.exit_code == 0
    assert "already enabled" in result.stdout
    assert _enabled(config_file) == ["demo"]


def test_plugins_enable_creates_the_file_when_missing(cli, fake_plugins, tmp_path, monkeypatch):
    path = tmp_path / "new" / "plugins.toml"
    monkeypatch.setenv("PLATFORM_CONFIG", str(path))
    fake_plugins("demo")
    assert cli("plugins", "enable", "demo").exit_code == 0
    assert _enabled(path) == ["demo"]


def test_plugins_enable_adds_the_key_to_a_plugins_table_without_it(cli, config_file, fake_plugins):
    config_file.write_text(
        '[core]\nsecret_key = "k"  # keep me\n\n[plugins.demo]\nx = 1\n', encoding="utf-8"
    )
    fake_plugins("demo")
    assert cli("plugins", "enable", "demo").exit_code == 0
    text = config_file.read_text(encoding="utf-8")
    assert "# keep me" in text
    assert tomllib.loads(text)["plugins"] == {"enabled": ["demo"], "demo": {"x": 1}}


def test_plugins_enable_unknown_plugin_fails_with_install_hint(cli, config_file, fake_plugins):
    fake_plugins("demo")
    before = config_file.read_text(encoding="utf-8")
    result = cli("plugins", "enable", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: plugin 'nope' is not installed (installed: demo); install "
        "it with `platformctl plugins install SPEC`\n"
    )
    assert config_file.read_text(encoding="utf-8") == before


def test_plugins_disable_keeps_comments_and_other_plugins(cli, config_file, enable):
    enable("demo", "other")
    config_file.write_text(
        config_file.read_text().replace(
            '"demo", "other"', '\n  "demo",  # soon gone\n  "other",  # stays\n'
        )
    )
    result = cli("plugins", "disable", "demo")
    assert result.exit_code == 0, result.output
    text = config_file.read_text(encoding="utf-8")
    assert "# stays" in text and "# the plugins switched on" in text
    assert "soon gone" not in text
    assert _enabled(config_file) == ["other"]


def test_plugins_disable_not_enabled_changes_nothing(cli, config_file):
    before = config_file.read_text(encoding="utf-8")
    result = cli("plugins", "disable", "demo")
    assert result.exit_code == 0
    assert "not enabled" in result.stdout
    assert config_file.read_text(encoding="utf-8") == before


@pytest.fixture
def pip_calls(monkeypatch, fake_plugins) -> list[list[str]]:
    """Fake pip: each install "adds" the plugin named by the spec ``pkg-<name>``."""
    calls: list[list[str]] = []

    def fake_pip(specs: list[str], *, upgrade: bool, verbose: bool = False) -> None:
        calls.append(specs)
        for spec in specs:
            if spec.startswith("pkg-"):
                fake_plugins(spec.removeprefix("pkg-"))

    monkeypatch.setattr(plugins_cmd, "pip_install", fake_pip)
    return calls


def test_plugins_install_enables_the_new_entry_points(cli, config_file, pip_calls):
    result = cli("plugins", "install", "pkg-demo")
    assert result.exit_code == 0, result.output
    assert pip_calls == [["pkg-demo"]]
    assert _enabled(config_file) == ["demo"]


def test_plugins_install_without_new_plugin_enables_nothing(cli, config_file, pip_calls):
    result = cli("plugins", "install", "requests")
    assert result.exit_code == 0
    assert "added no plugin" in result.stderr
    assert _enabled(config_file) == []


def test_plugins_install_pip_failure_fails_with_one_line(cli, monkeypatch):
    monkeypatch.setattr(
        plugins_cmd.subprocess,
        "run",
        lambda argv, check, **kw: types.SimpleNamespace(
            returncode=3, argv=argv, stdout="", stderr=""
        ),
    )
    result = cli("plugins", "install", "nothing-here")
    assert result.exit_code == 1
    assert result.stderr.endswith("\nerror: pip install nothing-here failed (exit status 3)\n")


def test_plugins_install_runs_pip_of_this_interpreter(monkeypatch):
    seen = []
    monkeypatch.setattr(
        plugins_cmd.subprocess,
        "run",
        lambda argv, check, **kw: (
            seen.append(argv) or types.SimpleNamespace(returncode=0, stdout="", stderr="")
        ),
    )
    plugins_cmd.pip_install(["a", "b"], upgrade=True)
    assert seen == [[sys.executable, "-m", "pip", "install", "--upgrade", "a", "b"]]


def test_plugins_new_scaffolds_into_the_given_directory(cli, monkeypatch, tmp_path):
    calls = []

    def create_plugin(name: str, dest: Path) -> Path:
        calls.append((name, dest))
        return dest / name

    scaffold = types.ModuleType("platform_core.scaffold")
    scaffold.create_plugin = create_plugin  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "platform_core.scaffold", scaffold)
    result = cli("plugins", "new", "billing", "--dir", str(tmp_path / "plugins"))
    assert result.exit_code == 0, result.output
    assert calls == [("billing", tmp_path / "plugins")]
    assert f"created {tmp_path / 'plugins' / 'billing'}" in result.stdout
    assert "platformctl plugins enable billing" in result.stderr


WHEEL_PLUGIN = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "platform-wheeltest"
version = "0.3.0"
requires-python = ">=3.11"
dependencies = ["platform-core>=0.1,<1"]

[project.entry-points."platform_core.plugins"]
wheeltest = "platform_wheeltest.plugin"

[tool.setuptools]
packages = ["platform_wheeltest"]
""",
    "platform_wheeltest/__init__.py": "",
    "platform_wheeltest/plugin.py": """\
from platform_core import PluginMeta, hookimpl


@hookimpl
def platform_plugin_meta():
    return PluginMeta(core=">=0.1,<1", description="built into a wheel by a test")
""",
}


def test_plugins_install_of_a_real_wheel_into_a_fresh_environment(tmp_path):
    """Build a plugin wheel, ``platformctl plugins install`` it with the real pip into a
    throwaway virtual environment (offline), and find it discovered and enabled there."""
    import importlib.metadata
    import site
    import subprocess
    import sysconfig

    source = tmp_path / "src"
    for name, text in WHEEL_PLUGIN.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text, encoding="utf-8")
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "-w", str(tmp_path / "dist"), str(source)], check=True, env=offline)
    (wheel,) = (tmp_path / "dist").glob("platform_wheeltest-0.3.0-*.whl")

    # A fresh environment layered over this one (platform-core, the CLI and pip come from
    # here, like --system-site-packages would bring them): installs land in the new one only.
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")
    assert ours in site.getsitepackages()
    Path(purelib, "_outer_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")

    config = tmp_path / "plugins.toml"
    config.write_text('[core]\nlog_format = "text"\n\n[plugins]\nenabled = []\n')
    env = {**offline, "PLATFORM_CONFIG": str(config)}

    def platformctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-m", "platformctl", *args], env=env, capture_output=True, text=True
        )

    installed = platformctl("plugins", "install", str(wheel))
    assert installed.returncode == 0, installed.stderr
    assert f"installed and enabled wheeltest in {config}" in installed.stdout
    assert _enabled(config) == ["wheeltest"]
    listed = platformctl("plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["wheeltest"] == {
        "name": "wheeltest",
        "version": "0.3.0",
        "enabled": True,
        "state": "active",
        "reason": "",
    }
    assert list(Path(purelib).glob("platform_wheeltest-0.3.0.dist-info"))
    with pytest.raises(importlib.metadata.PackageNotFoundError):  # not in this environment
        importlib.metadata.version("platform-wheeltest")
