"""The plugin API: one documented import surface, deprecated old paths, typed settings,
operation ids, and import-linter contracts derived from the installed plugins."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from pydantic import BaseModel

import platform_core
import platform_core.testing
from platform_core import PlatformDeprecationWarning
from platform_core.lintcontracts import contracts, installed_plugins
from platform_core.lintcontracts import main as lintcontracts_main

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "docs" / "plugin-api.md"

# The old paths third-party plugins written from the 0.1 docs and scaffold use.
OLD_PATHS = {
    "platform_core.auth.deps.get_context": "platform_core.get_context",
    "platform_core.auth.deps.DbSession": "platform_core.DbSession",
    "platform_core.auth.deps.Caller": "platform_core.Caller",
    "platform_core.auth.deps.get_session": "platform_core.DbSession",
    "platform_core.auth.deps.current_principal": "platform_core.Caller",
    "platform_core.auth.service.Principal": "platform_core.Principal",
    "platform_core.db.utcnow": "platform_core.utcnow",
    "platform_core.db.UTCDateTime": "platform_core.UTCDateTime",
    "platform_core.db.plugin_metadata": "platform_core.plugin_metadata",
    "platform_core.context.PlatformContext": "platform_core.PlatformContext",
    "platform_core.events.outbox.Event": "platform_core.Event",
    "platform_core.events.outbox.publish": "platform_core.publish",
    "platform_core.errors.NotFound": "platform_core.NotFound",
    "platform_core.specs.JobSpec": "platform_core.JobSpec",
    "platform_core.http.IdPath": "platform_core.IdPath",
    "platform_core.notifications.service.users_with_role": "platform_core.users_with_role",
    "platformctl.runtime.run": "platform_core.run_command",
}


def _documented(section: str) -> set[str]:
    """Names listed as ``- `name`: ...`` under the page's ``## <section>`` heading."""
    text = API_PAGE.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    [body] = [p for p in parts if p.startswith(section + "\n")]
    return set(re.findall(r"^- `([A-Za-z_][A-Za-z0-9_]*)`:", body, flags=re.M))


def test_every_public_name_is_documented_and_every_documented_name_exported():
    documented = _documented("platform_core")
    exported = set(platform_core.__all__)
    assert exported - documented == set(), "in platform_core.__all__, not in docs/plugin-api.md"
    assert documented - exported == set(), "in docs/plugin-api.md, not in platform_core.__all__"


def test_every_testing_name_is_documented_and_exported():
    documented = _documented("platform_core.testing")
    exported = set(platform_core.testing.__all__)
    assert exported == documented


@pytest.mark.parametrize("name", sorted(platform_core.__all__))
def test_every_public_name_resolves(name):
    assert getattr(platform_core, name) is not None
    assert name in dir(platform_core)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        platform_core.nope  # noqa: B018


def test_import_platform_core_is_cheap():
    # The CLI's --help imports platform_core: FastAPI and SQLAlchemy load on first use only.
    code = (
        "import sys, platform_core; "
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_path_keeps_working_and_warns_naming_the_new_one(old):
    module_name, name = old.rsplit(".", 1)
    new = OLD_PATHS[old]
    module = importlib.import_module(module_name)
    with pytest.warns(PlatformDeprecationWarning) as record:
        exec(f"from {module_name} import {name} as value", {"__name__": "thirdparty.plugin"})
    [warning] = [w for w in record if isinstance(w.message, PlatformDeprecationWarning)]
    message = str(warning.message)
    assert old in message and f"import {new} instead" in message
    assert issubclass(PlatformDeprecationWarning, DeprecationWarning)
    # Same object as the new path, except the dependencies the new names replace.
    if new.rsplit(".", 1)[1] == name or name == "run":
        value = object.__getattribute__(module, name)
        assert value is getattr(platform_core, new.rsplit(".", 1)[1]) or name == "run"


def test_old_paths_read_by_the_core_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec("from platform_core.db import utcnow", {"__name__": "platform_core.something"})
        exec("from platformctl.runtime import run", {"__name__": "platformctl.something"})


def test_every_first_party_plugin_imports_platform_core_only():
    pattern = re.compile(r"^\s*(from|import) (platform_core\.(?!testing\b)|platformctl)", re.M)
    dirs = [*sorted((ROOT / "plugins").glob("*/platform_*")), ROOT / "tests/example_plugin"]
    dirs += [ROOT / "tests/jobs_plugin", ROOT / "platform_core/scaffold/template"]
    offenders = [
        f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
        for d in dirs
        for path in d.rglob("*.py*")
        for m in pattern.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


class _ShopSettings(BaseModel):
    size: int = 3


class _Other(BaseModel):
    pass


class _ShopPlugin:
    @platform_core.hookimpl
    def platform_settings(self) -> type[BaseModel]:
        return _ShopSettings


class _Bare:
    @platform_core.hookimpl
    def platform_plugin_meta(self) -> platform_core.PluginMeta:
        return platform_core.PluginMeta()


async def test_settings_for_returns_the_plugins_model_or_says_why_not(platform_factory):
    platform = await platform_factory(
        extra_plugins={"shop": _ShopPlugin(), "bare": _Bare()}, settings={"shop": {"size": 5}}
    )
    settings = platform.ctx.settings_for("shop", _ShopSettings)
    assert isinstance(settings, _ShopSettings) and settings.size == 5
    with pytest.raises(TypeError, match="settings of plugin 'shop' are _ShopSettings, not _Other"):
        platform.ctx.settings_for("shop", _Other)
    with pytest.raises(LookupError, match="plugin 'nosuch' is not loaded"):
        platform.ctx.settings_for("nosuch", _ShopSettings)
    with pytest.raises(LookupError, match="plugin 'bare' has no settings"):
        platform.ctx.settings_for("bare", _ShopSettings)


async def test_typed_state_accessors(platform):
    ctx = platform.ctx
    assert ctx.scopes_by_role["admin"] == frozenset(ctx.permissions)
    assert ctx.migration_targets[0].plugin == "core"
    principal = platform_core.Principal(1, "x", "member", frozenset())
    ctx.credential_cache.put("secret", principal)
    assert ctx.credential_cache.get("secret") == principal
    ctx.forget_credentials()
    assert ctx.credential_cache.get("secret") is None


async def test_operation_ids_are_short_unique_and_tagged_by_plugin(platform_factory):
    names = [p.name for p in installed_plugins()]
    platform = await platform_factory(enabled=names)
    active = {r.name for r in platform.ctx.plugins.active_records()}
    assert set(names) <= active
    doc = platform.app.openapi()
    seen: dict[str, str] = {}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            op_id = op["operationId"]
            assert re.fullmatch(r"[a-z]+_[a-z0-9_]+", op_id), op_id
            assert op_id not in seen, f"{op_id}: {seen.get(op_id)} and {method} {path}"
            seen[op_id] = f"{method} {path}"
            owner = path.split("/")[2] if path.startswith("/api/") else "ops"
            assert op_id.startswith(f"{owner}_"), (op_id, path)
            assert op["tags"][0] == owner, (path, op["tags"])
    assert "scheduler_create_booking" in seen and "core_create_token" in seen


def test_lint_contracts_cover_every_installed_plugin():
    plugins = installed_plugins()
    assert {p.name for p in plugins} >= {"inventory", "scheduler", "pricing", "example"}
    section = contracts(plugins)
    for plugin in plugins:
        assert plugin.package in section["root_packages"]
        boundary = [
            c
            for c in section["contracts"]
            if c["source_modules"] == [plugin.package] and c["type"] == "forbidden"
        ]
        assert boundary, f"no import contract for plugin {plugin.name}"
        [contract] = boundary
        assert "platform_core.db" in contract["forbidden_modules"]
        assert "platformctl" in contract["forbidden_modules"]
        assert "platform_core.testing" not in contract["forbidden_modules"]
    [scheduler] = [c for c in section["contracts"] if c["source_modules"] == ["platform_scheduler"]]
    assert "platform_inventory.service" in scheduler["forbidden_modules"]
    assert "platform_inventory.api" not in scheduler["forbidden_modules"]
    [pricing] = [c for c in section["contracts"] if c["source_modules"] == ["platform_pricing"]]
    assert "platform_inventory" in pricing["forbidden_modules"]  # it does not require it


def test_pyproject_contracts_match_the_installed_plugins(tmp_path, capsys):
    assert lintcontracts_main(["--check", "--pyproject", str(ROOT / "pyproject.toml")]) == 0
    stale = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    stale.write_text(text.replace('    "platform_pricing",\n', "", 1), encoding="utf-8")
    assert lintcontracts_main(["--check", "--pyproject", str(stale)]) == 1
    assert "--write" in capsys.readouterr().err
    assert lintcontracts_main(["--write", "--pyproject", str(stale)]) == 0
    assert lintcontracts_main(["--check", "--pyproject", str(stale)]) == 0
