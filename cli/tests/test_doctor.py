"""``platformctl doctor``: the check list and its exit status."""

from __future__ import annotations

import json

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/x"


def _checks(cli) -> tuple[int, dict[str, dict]]:
    result = cli("doctor", "--json")
    return result.exit_code, {c["name"]: c for c in json.loads(result.stdout)}


def test_doctor_passes_on_a_healthy_platform(cli, migrated):
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    assert "[FAIL]" not in result.stdout
    assert result.stdout.rstrip().endswith("all checks passed")


def test_doctor_fails_when_the_database_is_unreachable(cli, monkeypatch):
    monkeypatch.setenv("PLATFORM_DATABASE_URL", UNREACHABLE)
    code, checks = _checks(cli)
    assert code == 1
    assert checks["database"]["status"] == "fail"
    assert "database unreachable" in checks["database"]["detail"]
    assert checks["migrations"]["status"] == "skip"


def test_doctor_fails_on_pending_migrations(cli):
    code, checks = _checks(cli)
    assert code == 1
    assert checks["migrations"]["status"] == "fail"
    assert "core" in checks["migrations"]["detail"]


def test_doctor_fails_on_an_isolated_plugin_with_its_reason(
    cli, migrated, fake_plugins, demo_module, enable
):
    fake_plugins("demo", demo_module(requires=("ghost>=1",)))
    enable("demo")
    code, checks = _checks(cli)
    assert code == 1
    assert checks["plugin demo"] == {
        "name": "plugin demo",
        "status": "fail",
        "detail": "isolated: requires ghost>=1, which is not installed",
    }


def test_doctor_fails_on_an_invalid_config(cli, config_file):
    config_file.write_text("[core]\nstrict = 'maybe'\n", encoding="utf-8")
    code, checks = _checks(cli)
    assert code == 1
    assert list(checks) == ["config"]
    assert "[core] key 'strict'" in checks["config"]["detail"]
