"""Fixtures for platformctl tests: a config in tmp_path, a CLI runner, fake plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from platform_core import PluginMeta, hookimpl
from platform_core.manager import ENTRY_POINT_GROUP
from platformctl import discovery
from platformctl.main import app

SECRET = "cli-test-secret-key-" + "x" * 40

CONFIG_TEMPLATE = """\
# platform config used by the CLI tests
[core]
database_url = "{database_url}"  # a file per test
secret_key = "{secret}"
log_format = "text"

[plugins]
# the plugins switched on
enabled = [{enabled}]
"""


def write_config(path: Path, *, database_url: str) -> Path:
    """Write a plugins.toml with comments, the given database and no plugin enabled."""
    path.write_text(
        CONFIG_TEMPLATE.format(database_url=database_url, secret=SECRET, enabled=""),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A SQLite database file in tmp_path."""
    return f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}"


@pytest.fixture
def config_file(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """plugins.toml in tmp_path, named by PLATFORM_CONFIG; no PLATFORM_* leaks in."""
    for key in [k for k in os.environ if k.startswith("PLATFORM_")]:
        monkeypatch.delenv(key)
    path = write_config(tmp_path / "plugins.toml", database_url=database_url)
    monkeypatch.setenv("PLATFORM_CONFIG", str(path))
    monkeypatch.chdir(tmp_path)
    return path


Invoke = Callable[..., Result]


@pytest.fixture
def cli(config_file: Path) -> Invoke:
    """Run ``platformctl ARGS`` in-process: ``cli("users", "list", input=...)``."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, prog_name="platformctl")

    return invoke


@pytest.fixture
def migrated(cli: Invoke) -> None:
    """The database upgraded to head."""
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output


@pytest.fixture
def admin(cli: Invoke, migrated: None) -> str:
    """A password-less admin (no Argon2 cost); returns the username."""
    result = cli("users", "create", "root", "--role", "admin", "--no-password")
    assert result.exit_code == 0, result.output
    return "root"


def _demo_module(*, requires: tuple[str, ...] = (), with_cli: bool = True) -> types.ModuleType:
    module = types.ModuleType("platformctl_tests_demo")

    @hookimpl
    def platform_plugin_meta() -> PluginMeta:
        return PluginMeta(requires=list(requires), description="Demo plugin of the CLI tests.")

    @hookimpl
    def platform_cli(cli: typer.Typer) -> None:
        @cli.command("hello")
        def hello(ctx: typer.Context, name: str = "world") -> None:
            """Greet, naming the object commands receive."""
            typer.echo(f"hello {name} from {type(ctx.obj).__name__}")

    module.platform_plugin_meta = platform_plugin_meta  # type: ignore[attr-defined]
    if with_cli:
        module.platform_cli = platform_cli  # type: ignore[attr-defined]
    return module


@pytest.fixture
def demo_module() -> Callable[..., types.ModuleType]:
    """Build a plugin module whose CLI adds ``hello``: ``demo_module(requires=(), with_cli=True)``.

    ``hello`` prints the type of ``ctx.obj``, the object plugin commands receive.
    """
    return _demo_module


InstallPlugin = Callable[..., None]


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """Replace the installed plugins: ``fake_plugins("demo", module_or_None)``.

    With ``None`` the entry point names a module that does not exist, so loading it would
    fail: proof that a disabled plugin is never imported.
    """
    from platform_core import manager

    installed: dict[str, EntryPoint] = {}
    monkeypatch.setattr(manager, "discover", lambda: dict(installed))
    monkeypatch.setattr(discovery, "installed_names", lambda: set(installed))

    def install(name: str, module: types.ModuleType | None = None) -> None:
        module_name = f"platformctl_tests_plugin_{name}"
        if module is not None:
            monkeypatch.setitem(sys.modules, module_name, module)
        installed[name] = EntryPoint(name=name, value=module_name, group=ENTRY_POINT_GROUP)

    yield install


@pytest.fixture
def enable(config_file: Path) -> Callable[..., None]:
    """Rewrite the test config with the given plugin names enabled (same database)."""

    def rewrite(*names: str) -> None:
        text = config_file.read_text(encoding="utf-8")
        listed = ", ".join(f'"{n}"' for n in names)
        config_file.write_text(
            text.replace("enabled = []", f"enabled = [{listed}]"), encoding="utf-8"
        )

    return rewrite


DIST_MODULE = "platformctl_tests_dist_plugin"


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    """A directory holding a real installed-looking plugin (module plus dist-info).

    Put it on PYTHONPATH of a subprocess: ``demo`` is then an entry point of the
    ``platform_core.plugins`` group, found the way pip-installed plugins are.
    """
    site = tmp_path / "site"
    dist_info = site / "platformctl_tests_dist_plugin-0.3.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: platformctl-tests-dist-plugin\nVersion: 0.3.0\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ndemo = {DIST_MODULE}\n")
    (site / f"{DIST_MODULE}.py").write_text(
        textwrap.dedent("""\
        import typer

        from platform_core import hookimpl


        @hookimpl
        def platform_cli(cli: typer.Typer) -> None:
            @cli.command("hello")
            def hello() -> None:
                typer.echo("hello from the installed demo plugin")
        """)
    )
    return site


Run = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_platformctl(config_file: Path) -> Run:
    """Run ``python -m platformctl ARGS`` in a subprocess using the test config.

    Keyword arguments: ``input`` (stdin text) and ``env`` (extra environment variables).
    """

    def run(
        *args: str, input: str | None = None, env: dict[str, Any] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "PLATFORM_CONFIG": str(config_file),
            **{k: str(v) for k, v in (env or {}).items()},
        }
        return subprocess.run(
            [sys.executable, "-m", "platformctl", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environ,
        )

    return run
