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


def test_doctor_reports_the_embedded_runner_without_a_broker(cli, migrated):
    code, checks = _checks(cli)
    assert code == 0
    assert checks["job broker"]["status"] == "ok"
    assert checks["job broker"]["detail"].startswith("embedded")


def test_doctor_fails_when_the_broker_does_not_answer_and_hides_its_password(
    cli, migrated, monkeypatch
):
    monkeypatch.setenv("PLATFORM_JOBS__BROKER_URL", "redis://:s3cret@127.0.0.1:1/0")
    result = cli("doctor", "--json")
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["job broker"]["status"] == "fail"
    assert checks["job broker"]["detail"].startswith("redis://:***@127.0.0.1:1/0: ")


def test_doctor_passes_with_a_live_broker(cli, migrated, monkeypatch):
    monkeypatch.setenv("PLATFORM_JOBS__BROKER_URL", "redis://127.0.0.1:6379/0")
    code, checks = _checks(cli)
    assert code == 0, checks
    assert checks["job broker"]["status"] == "ok"
    assert "distributed" in checks["job broker"]["detail"]


def test_doctor_blames_a_garbage_broker_url_on_its_variable(cli, migrated, monkeypatch):
    monkeypatch.setenv("PLATFORM_JOBS__BROKER_URL", "localhost:6379")
    code, checks = _checks(cli)
    assert code == 1
    assert checks["config"]["status"] == "fail"
    assert checks["config"]["detail"].startswith(
        "environment variable PLATFORM_JOBS__BROKER_URL ([core] key 'jobs.broker_url'): "
        "must be a Redis URL"
    )


def test_doctor_fails_on_an_unknown_log_level_instead_of_serve(cli, migrated, monkeypatch):
    monkeypatch.setenv("PLATFORM_LOG_LEVEL", "LOUD")
    code, checks = _checks(cli)
    assert code == 1
    assert "PLATFORM_LOG_LEVEL" in checks["config"]["detail"]
    assert "unknown log level 'LOUD'" in checks["config"]["detail"]


def test_doctor_warns_about_a_misspelled_platform_variable(cli, migrated, monkeypatch):
    monkeypatch.setenv("PLATFORM_DATABSE_URL", "sqlite+aiosqlite:///elsewhere.db")
    code, checks = _checks(cli)
    assert code == 0  # a warning, not a failure
    assert checks["environment"]["status"] == "warn"
    assert "PLATFORM_DATABSE_URL" in checks["environment"]["detail"]
    assert "did you mean PLATFORM_DATABASE_URL?" in checks["environment"]["detail"]
