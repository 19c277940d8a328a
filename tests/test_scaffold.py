"""The plugin scaffold: ``create_plugin`` writes a plugin that installs and passes its tests."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from platform_core.errors import ValidationFailed
from platform_core.scaffold import create_plugin

PIP = (sys.executable, "-m", "pip")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_generated_plugin_installs_with_pip_and_passes_its_own_tests(tmp_path):
    # A unique name: the plugin is briefly installed in the shared environment.
    name = f"scaffold_{uuid.uuid4().hex[:8]}"
    project = create_plugin(name, tmp_path)
    installed = _run(*PIP, "install", "-q", "--no-build-isolation", "--no-deps", str(project))
    try:
        assert installed.returncode == 0, installed.stderr
        tests = _run(
            sys.executable,
            "-m",
            "pytest",
            str(project / "tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            cwd=project,
        )
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert "11 passed" in tests.stdout
        shown = _run(*PIP, "show", "-f", f"platform-{name.replace('_', '-')}")
        assert f"platform_{name}/migrations/versions/0001_initial.py" in shown.stdout
    finally:
        _run(*PIP, "uninstall", "-y", f"platform-{name.replace('_', '-')}")


def test_generated_plugin_has_the_documented_layout(tmp_path):
    project = create_plugin("shop", tmp_path / "plugins")
    assert project == tmp_path / "plugins" / "shop"
    package = project / "platform_shop"
    expected = {"pyproject.toml", "README.md", "tests/test_shop.py"} | {
        f"platform_shop/{m}.py"
        for m in (
            "__init__",
            "plugin",
            "settings",
            "models",
            "schemas",
            "service",
            "routes",
            "jobs",
            "cli",
            "migrations/versions/0001_initial",
        )
    }
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert expected <= files
    assert not [f for f in files if f.endswith(".tmpl")]
    assert 'shop = "platform_shop.plugin"' in (project / "pyproject.toml").read_text()
    assert 'revision = "shop_0001"' in (package / "migrations/versions/0001_initial.py").read_text()
    assert "class ShopSettings" in (package / "settings.py").read_text()


def test_generated_python_files_compile(tmp_path):
    project = create_plugin("multi_word", tmp_path)
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert "class MultiWordSettings" in (project / "platform_multi_word/settings.py").read_text()


def test_create_plugin_into_existing_empty_project_directory_succeeds(tmp_path):
    (tmp_path / "shop").mkdir()
    assert create_plugin("shop", tmp_path) == tmp_path / "shop"
    assert (tmp_path / "shop" / "pyproject.toml").is_file()


def test_create_plugin_beside_other_plugins_succeeds(tmp_path):
    create_plugin("shop", tmp_path)
    create_plugin("cart", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cart", "shop"]


@pytest.mark.parametrize(
    "name", ["", "Shop", "1shop", "shop-cart", "shop cart", "_shop", "a" * 41, "shöp", "shop\n"]
)
def test_create_plugin_rejects_invalid_name(tmp_path, name):
    with pytest.raises(ValidationFailed, match="invalid plugin name"):
        create_plugin(name, tmp_path / "p")
    assert not (tmp_path / "p").exists()  # nothing written


@pytest.mark.parametrize("name", ["core", "api", "auth", "docs", "enabled", "healthz", "readyz"])
def test_create_plugin_rejects_reserved_name(tmp_path, name):
    with pytest.raises(ValidationFailed, match="reserved"):
        create_plugin(name, tmp_path / "p")


def test_create_plugin_refuses_non_empty_directory(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "keep.txt").write_text("mine")
    with pytest.raises(ValidationFailed, match="not an empty directory") as info:
        create_plugin("shop", tmp_path)
    assert info.value.extra["errors"][0]["field"] == "dest"
    assert sorted(p.name for p in (tmp_path / "shop").iterdir()) == ["keep.txt"]


def test_create_plugin_refuses_existing_file(tmp_path):
    (tmp_path / "shop").write_text("a file")
    with pytest.raises(ValidationFailed, match="not an empty directory"):
        create_plugin("shop", tmp_path)
    assert (tmp_path / "shop").read_text() == "a file"


def test_generated_plugin_is_ruff_clean_under_its_own_config(tmp_path):
    project = create_plugin("multi_word", tmp_path)
    lint = _run(sys.executable, "-m", "ruff", "check", ".", cwd=project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(sys.executable, "-m", "ruff", "format", "--check", ".", cwd=project)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_create_plugin_refuses_an_installed_name(tmp_path):
    with pytest.raises(ValidationFailed, match="'inventory' is already installed"):
        create_plugin("inventory", tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_generated_plugin_has_events_rules_scopes_and_a_database_command(tmp_path):
    package = create_plugin("shop", tmp_path) / "platform_shop"
    events = (package / "events.py").read_text()
    assert 'event_name: ClassVar[str] = "shop.item.created"' in events
    assert "EventHandler(" in events and "NotificationRule(" in events
    assert 'requires_scopes("shop:admin")' in (package / "routes.py").read_text()
    assert "platform.db.session()" in (package / "cli.py").read_text()
    assert "requires=REQUIRES" in (package / "plugin.py").read_text()
