"""``platformctl db downgrade`` cannot destroy data by accident: --yes off a terminal, and
no downgrade of a plugin that enabled plugins depend on unless --force."""

from __future__ import annotations

import pytest

from platform_core import migrate


@pytest.fixture
def platform_plugins():
    return ["inventory", "scheduler"]  # the scheduler requires inventory


async def _current(platform, plugin):
    target = next(t for t in platform.ctx.migration_targets if t.plugin == plugin)
    return (await migrate.status(platform.ctx.db, [target]))[0].current


async def test_downgrading_the_core_is_refused_naming_every_enabled_plugin(platform, run_cli):
    before = await _current(platform, "core")
    result = await run_cli("db", "downgrade", "--plugin", "core", "--revision", "base", "--yes")
    assert result.exit_code == 1
    assert "enabled plugins depend on it: inventory, scheduler" in result.stderr
    assert "--force" in result.stderr
    assert await _current(platform, "core") == before
    assert (await platform.client().get("/readyz")).status_code == 200


async def test_downgrading_a_required_plugin_is_refused_naming_its_dependents(platform, run_cli):
    before = await _current(platform, "inventory")
    result = await run_cli("db", "downgrade", "--plugin", "inventory", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: refusing to downgrade inventory: ")
    assert "scheduler" in result.stderr
    assert await _current(platform, "inventory") == before


async def test_downgrade_off_a_terminal_without_yes_is_refused(platform, run_cli):
    before = await _current(platform, "scheduler")
    result = await run_cli("db", "downgrade", "--plugin", "scheduler", "--revision", "base")
    assert result.exit_code == 1
    assert "pass --yes" in result.stderr
    assert await _current(platform, "scheduler") == before


async def test_a_plugin_nothing_depends_on_downgrades_with_yes(platform, run_cli):
    result = await run_cli(
        "db", "downgrade", "--plugin", "scheduler", "--revision", "base", "--yes"
    )
    assert result.exit_code == 0, result.output
    assert await _current(platform, "scheduler") == ()


async def test_force_downgrades_a_required_plugin_anyway(platform, run_cli):
    result = await run_cli(
        "db", "downgrade", "--plugin", "inventory", "--revision", "base", "--yes", "--force"
    )
    assert result.exit_code == 0, result.output
    assert await _current(platform, "inventory") == ()
    ready = await platform.client().get("/readyz")
    assert ready.status_code == 503
    assert "missing tables" in ready.text


async def test_remove_drop_data_off_a_terminal_without_yes_is_refused(platform, run_cli):
    before = await _current(platform, "scheduler")
    result = await run_cli("plugins", "remove", "scheduler", "--drop-data")
    assert result.exit_code == 1
    assert "pass --yes" in result.stderr
    assert await _current(platform, "scheduler") == before
