"""Every invalid settings key at once; the startup warnings about missing plugins and leftovers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import text

from platform_core import hookimpl
from platform_core.app import internal_plugins
from platform_core.config import Config, CoreSettings, load_config
from platform_core.errors import ConfigError
from platform_core.manager import PlatformPlugins
from platform_core.migrate import leftover_tables, warn_leftover_tables


class Limits(BaseModel):
    limit: int = Field(10, gt=0)
    ratio: float = Field(0.5, le=1)


class WithSettings:
    @hookimpl
    def platform_settings(self):
        return Limits


class NoSettings:
    @hookimpl
    def platform_permissions(self):
        return []


def _load(tmp_path: Path, extra, tables, enabled=()) -> PlatformPlugins:
    core = CoreSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", secret_key="k" * 32)
    config = Config(
        path=tmp_path / "plugins.toml", core=core, enabled=list(enabled), plugin_tables=tables
    )
    return PlatformPlugins(config, internal=internal_plugins(), extra=extra, installed={}).load()


def test_every_invalid_plugin_setting_is_reported_at_once(tmp_path):
    plugins = _load(
        tmp_path,
        {"s": WithSettings()},
        {"s": {"limit": 0, "ratio": 3, "limmit": 1, "extra": 2}},
    )
    reason = plugins.get("s").reason
    where = f"invalid settings: {tmp_path / 'plugins.toml'} [plugins.s] "
    assert reason.startswith(where + "key 'extra': unknown setting; key 'limmit': unknown setting")
    assert "key 'limit': Input should be greater than 0" in reason
    assert "key 'ratio': Input should be less than or equal to 1" in reason
    assert "\n" not in reason


def test_every_key_of_a_plugin_without_settings_is_named(tmp_path):
    plugins = _load(tmp_path, {"a": NoSettings()}, {"a": {"x": 1, "y": 2}})
    assert plugins.get("a").reason.endswith(
        "key 'x': the plugin takes no settings; key 'y': the plugin takes no settings"
    )


def test_config_file_errors_are_reported_at_once(tmp_path, monkeypatch):
    monkeypatch.delenv("PLATFORM_CONFIG", raising=False)
    path = tmp_path / "plugins.toml"
    path.write_text(
        "[core]\nstrict = 'sometimes'\nlog_format = 'xml'\n\n[plugins]\nenabled = 'all'\n"
        "demo = 3\n\n[extras]\nx = 1\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    for part in (
        "unknown section [extras]",
        "[core] key 'strict'",
        "[core] key 'log_format'",
        "[plugins] key 'enabled': must be a list",
        "[plugins] key 'demo': expected a [plugins.demo] table",
    ):
        assert part in message


def test_an_enabled_but_missing_plugin_is_logged_at_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="platform_core.plugins"):
        _load(tmp_path, {}, {}, enabled=["ghost"])
    assert any(
        r.levelno == logging.WARNING and "plugin ghost is enabled but not installed" in r.message
        for r in caplog.records
    )


def test_leftover_tables_are_grouped_by_the_plugin_that_left_them():
    tables = [
        "alembic_version_core",
        "core_users",
        "alembic_version_inventory",
        "inventory_devices",
        "alembic_version_shop_extra",
        "shop_extra_items",
        "shop_orders",
    ]
    assert leftover_tables(tables, {"inventory"}) == {
        "shop_extra": ["alembic_version_shop_extra", "shop_extra_items"],
        "shop": ["shop_orders"],
    }
    assert leftover_tables(tables, {"inventory", "shop_extra", "shop"}) == {}


async def test_startup_warns_about_tables_of_an_uninstalled_plugin(platform_factory, caplog):
    platform = await platform_factory(start=False)
    async with platform.ctx.db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE ghost_things (id INTEGER PRIMARY KEY)"))
        await conn.execute(text("CREATE TABLE alembic_version_ghost (version_num VARCHAR(32))"))
    with caplog.at_level(logging.WARNING, logger="platform_core.plugins"):
        found = await warn_leftover_tables(platform.ctx.db, platform.ctx.plugins.owners())
    assert found == {"ghost": ["alembic_version_ghost", "ghost_things"]}
    assert "tables left behind by plugin ghost, which is not installed" in caplog.text
