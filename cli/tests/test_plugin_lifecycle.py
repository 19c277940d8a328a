"""The life cycle of a plugin: enable, remove (with or without its data), leftovers, new."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, inspect


def _tables(database_url: str) -> set[str]:
    engine = create_engine(database_url.replace("+aiosqlite", ""))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _enabled(config_file) -> str:
    return next(line for line in config_file.read_text().splitlines() if line.startswith("enabled"))


def test_enable_on_tables_at_head_says_so(cli, enable, config_file):
    enable("example")
    assert cli("db", "upgrade").exit_code == 0
    assert cli("plugins", "disable", "example").exit_code == 0
    result = cli("plugins", "enable", "example")
    assert result.exit_code == 0, result.output
    assert "already at the head revision" in result.stderr
    assert "db upgrade" not in result.stderr


def test_enable_on_a_fresh_database_says_to_upgrade(cli, migrated):
    result = cli("plugins", "enable", "example")
    assert result.exit_code == 0, result.output
    assert "platformctl db upgrade" in result.stderr


def test_remove_drop_data_downgrades_drops_version_table_and_disables(
    cli, enable, config_file, database_url
):
    enable("example")
    assert cli("db", "upgrade").exit_code == 0
    assert {"example_notes", "alembic_version_example"} <= _tables(database_url)
    result = cli("plugins", "remove", "example", "--drop-data", "--yes")
    assert result.exit_code == 0, result.output
    assert "downgraded example to base, dropped alembic_version_example" in result.stdout
    assert "pip uninstall platform-example" in result.stderr
    left = _tables(database_url)
    assert not [t for t in left if t.startswith("example_") or t == "alembic_version_example"]
    assert "alembic_version_core" in left  # the rest is untouched
    assert _enabled(config_file) == "enabled = []"
    checks = {c["name"]: c for c in json.loads(cli("doctor", "--json").stdout)}
    assert checks["leftover tables"]["status"] == "ok"


def test_remove_without_drop_data_keeps_the_tables(cli, enable, config_file, database_url):
    enable("example")
    assert cli("db", "upgrade").exit_code == 0
    result = cli("plugins", "remove", "example")
    assert result.exit_code == 0, result.output
    assert "its tables and data are kept" in result.stdout
    assert "example_notes" in _tables(database_url)
    assert _enabled(config_file) == "enabled = []"


def test_remove_refuses_while_an_enabled_plugin_requires_it(cli, enable, config_file):
    enable("inventory", "scheduler")
    result = cli("plugins", "remove", "inventory")
    assert result.exit_code == 1
    assert "enabled plugins require inventory: scheduler" in result.stderr
    assert _enabled(config_file) == 'enabled = ["inventory", "scheduler"]'
    forced = cli("plugins", "remove", "inventory", "--force")
    assert forced.exit_code == 0, forced.output
    assert "will be isolated: scheduler" in forced.stderr
    assert _enabled(config_file) == 'enabled = ["scheduler"]'


def test_remove_unknown_plugin_fails(cli):
    result = cli("plugins", "remove", "nope")
    assert result.exit_code == 1
    assert "'nope' is neither installed nor enabled" in result.stderr


def test_doctor_names_tables_left_by_an_uninstalled_plugin(cli, enable, request):
    enable("example")
    assert cli("db", "upgrade").exit_code == 0
    request.getfixturevalue("fake_plugins")  # now nothing is installed: example's tables stay
    result = cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == 1
    assert checks["plugin example"]["detail"].startswith("enabled but not installed")
    left = checks["tables of example"]
    assert left["status"] == "fail"
    assert "alembic_version_example" in left["detail"] and "example_notes" in left["detail"]


def test_new_refuses_an_installed_name(cli, tmp_path):
    result = cli("plugins", "new", "inventory", "--dir", str(tmp_path / "p"))
    assert result.exit_code == 1
    assert "already installed" in result.stderr
    assert not (tmp_path / "p").exists()


def test_events_replay_enqueues_for_an_active_handler(cli, enable):
    enable("example")
    assert cli("db", "upgrade").exit_code == 0
    result = cli("events", "replay", "--handler", "ghost:x", "--since", "1d")
    assert result.exit_code == 1
    assert "no active handler 'ghost:x'" in result.stderr and "example:" in result.stderr
    bad = cli("events", "replay", "--handler", "ghost:x", "--since", "soon")
    assert bad.exit_code == 1 and "--since: 'soon' is neither" in bad.stderr
    handler = result.stderr.split("(active: ")[1].split(",")[0].rstrip(")\n")
    ok = cli("events", "replay", "--handler", handler, "--since", "1d", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["enqueued"] == 0
