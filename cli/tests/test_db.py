"""``platformctl db``: upgrade, current, history and downgrade of per-plugin migrations."""

from __future__ import annotations

import json


def _current(cli) -> dict[str, dict]:
    result = cli("db", "current", "--json")
    assert result.exit_code == 0, result.output
    return {row["plugin"]: row for row in json.loads(result.stdout)}


def test_db_current_before_upgrade_shows_pending(cli):
    core = _current(cli)["core"]
    assert core["current"] == []
    assert core["pending"] is True


def test_db_upgrade_brings_every_plugin_to_head(cli):
    result = cli("db", "upgrade")
    assert result.exit_code == 0
    assert result.stdout == "upgraded: core\n"
    core = _current(cli)["core"]
    assert core["current"] == core["heads"]
    assert core["pending"] is False


def test_db_upgrade_twice_reports_up_to_date(cli, migrated):
    result = cli("db", "upgrade")
    assert result.exit_code == 0
    assert result.stdout == "already up to date\n"


def test_db_history_lists_revisions_newest_first(cli):
    result = cli("db", "history", "--plugin", "core", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert rows[-1]["down revision"] is None
    assert {r["plugin"] for r in rows} == {"core"}
    assert rows[0]["revision"] == _current(cli)["core"]["heads"][0]


def test_db_downgrade_to_base_then_upgrade_round_trips(cli, migrated):
    result = cli("db", "downgrade", "--plugin", "core", "--revision", "base", "--yes")
    assert result.exit_code == 0, result.output
    assert _current(cli)["core"] == {
        "plugin": "core",
        "current": [],
        "heads": _current(cli)["core"]["heads"],
        "pending": True,
    }
    assert cli("db", "upgrade").exit_code == 0
    assert _current(cli)["core"]["pending"] is False


def test_db_downgrade_defaults_to_one_revision(cli, migrated):
    history = json.loads(cli("db", "history", "--plugin", "core", "--json").stdout)
    result = cli("db", "downgrade", "--plugin", "core", "--yes")
    assert result.exit_code == 0
    expected = [history[0]["down revision"]] if history[0]["down revision"] else []
    assert _current(cli)["core"]["current"] == expected


def test_db_downgrade_unknown_plugin_fails_naming_installed_ones(cli, migrated):
    result = cli("db", "downgrade", "--plugin", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: plugin 'nope' is not installed (installed: ")
    assert "example" in result.stderr


def test_db_downgrade_reports_the_revision_reached(cli, migrated):
    history = json.loads(cli("db", "history", "--plugin", "core", "--json").stdout)
    result = cli("db", "downgrade", "--plugin", "core", "--yes")
    assert result.exit_code == 0, result.output
    reached = history[0]["down revision"] or "base"
    assert result.stdout == f"downgraded core to {reached} (asked: -1)\n"


def test_db_downgrade_works_on_an_installed_but_disabled_plugin(cli, enable, config_file):
    enable("example")
    assert cli("db", "upgrade").exit_code == 0
    config_file.write_text(config_file.read_text().replace('enabled = ["example"]', "enabled = []"))
    result = cli("db", "downgrade", "--plugin", "example", "--revision", "base", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == "downgraded example to base (asked: base)\n"
    enable("example")
    assert _current(cli)["example"]["current"] == []
