"""Configuration checked once, at load: the right culprit, and values refused up front."""

from __future__ import annotations

import logging
import os

import pytest

from platform_core.config import load_config
from platform_core.errors import ConfigError


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A path to write plugins.toml to, with no PLATFORM_* variable leaking in."""
    for key in [k for k in os.environ if k.startswith("PLATFORM_")]:
        monkeypatch.delenv(key)
    return tmp_path / "plugins.toml"


def _error(path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return str(exc.value)


def test_an_invalid_environment_value_names_the_variable_not_the_file(config, monkeypatch):
    config.write_text("[core]\nstrict = false\n")
    monkeypatch.setenv("PLATFORM_STRICT", "sometimes")
    message = _error(config)
    assert message.startswith("environment variable PLATFORM_STRICT ([core] key 'strict'): ")
    assert str(config) not in message


def test_an_invalid_nested_environment_value_names_the_variable(config, monkeypatch):
    monkeypatch.setenv("PLATFORM_AUTH__JWT_TTL_SECONDS", "0")
    message = _error(config)
    assert message.startswith("environment variable PLATFORM_AUTH__JWT_TTL_SECONDS ")
    assert "'auth.jwt_ttl_seconds'" in message


def test_a_list_variable_that_is_not_json_names_the_variable(config, monkeypatch):
    monkeypatch.setenv("PLATFORM_TRUSTED_PROXIES", "10.0.0.0/8")
    message = _error(config)
    assert message.startswith("environment variable PLATFORM_TRUSTED_PROXIES: not valid JSON")


def test_an_invalid_file_value_still_names_the_file(config):
    config.write_text('[core]\nlog_level = "LOUD"\n')
    assert _error(config).startswith(f"{config} [core] key 'log_level': unknown log level")


@pytest.mark.parametrize("key", ["short", "x" * 31])
def test_a_secret_key_under_32_bytes_is_refused_without_echoing_it(config, monkeypatch, key):
    monkeypatch.setenv("PLATFORM_SECRET_KEY", key)
    message = _error(config)
    assert "PLATFORM_SECRET_KEY" in message
    assert "must be at least 32 bytes" in message
    assert key not in message


def test_a_secret_key_of_32_bytes_is_accepted(config, monkeypatch):
    monkeypatch.setenv("PLATFORM_SECRET_KEY", "k" * 32)
    assert load_config(config).core.secret_key == "k" * 32


@pytest.mark.parametrize("level", ["LOUD", "verbose", ""])
def test_an_unknown_log_level_is_refused_at_load(config, monkeypatch, level):
    monkeypatch.setenv("PLATFORM_LOG_LEVEL", level)
    message = _error(config)
    assert "PLATFORM_LOG_LEVEL" in message
    assert "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in message


def test_a_log_level_in_any_case_is_accepted(config, monkeypatch):
    monkeypatch.setenv("PLATFORM_LOG_LEVEL", "warning")
    assert load_config(config).core.log_level == "WARNING"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://platform:secret@db/platform",
        "postgres://platform:secret@db/platform",
        "postgresql+psycopg://platform:secret@db/platform",
        "sqlite:///var/platform.db",
        "mysql+aiomysql://u:secret@h/db",
        "not a url",
    ],
)
def test_an_unsupported_database_url_says_which_schemes_work(config, monkeypatch, url):
    monkeypatch.setenv("PLATFORM_DATABASE_URL", url)
    message = _error(config)
    assert "PLATFORM_DATABASE_URL" in message
    assert "postgresql+asyncpg://" in message and "sqlite+aiosqlite://" in message
    assert "secret" not in message


@pytest.mark.parametrize("url", ["localhost:6379", "http://redis:6379", "redis://h:port/0"])
def test_a_broker_url_that_is_not_redis_is_refused(config, url):
    config.write_text(f'[core.jobs]\nbroker_url = "{url}"\n')
    assert f"{config} [core] key 'jobs.broker_url': " in _error(config)


def test_unknown_platform_variables_are_warned_about_with_a_suggestion(config, monkeypatch, caplog):
    monkeypatch.setenv("PLATFORM_DATABSE_URL", "x")
    monkeypatch.setenv("PLATFORM_AUTH__JWT_TTL", "5")
    with caplog.at_level(logging.WARNING, logger="platform_core.config"):
        cfg = load_config(config)
    assert cfg.warnings == [
        "environment variable PLATFORM_AUTH__JWT_TTL is not a setting and is ignored; "
        "did you mean PLATFORM_AUTH__JWT_TTL_SECONDS?",
        "environment variable PLATFORM_DATABSE_URL is not a setting and is ignored; "
        "did you mean PLATFORM_DATABASE_URL?",
    ]
    assert [r.getMessage() for r in caplog.records] == cfg.warnings


def test_known_and_plugin_variables_are_not_warned_about(config, monkeypatch):
    config.write_text('[plugins]\nenabled = ["scheduler"]\n')
    for name, value in {
        "PLATFORM_CONFIG": str(config),
        "PLATFORM_STRICT": "false",
        "PLATFORM_DATABASE__STATEMENT_TIMEOUT_SECONDS": "30",
        "PLATFORM_WEBHOOKS__ALLOW": '["127.0.0.0/8"]',
        "PLATFORM_TEST_DATABASE_URL": "x",
        "PLATFORM_SCHEDULER_CREDENTIAL_BMC1": "root:calvin",
    }.items():
        monkeypatch.setenv(name, value)
    assert load_config(config).warnings == []


async def test_serve_logs_which_job_runner_it_uses(platform_factory, caplog):
    with caplog.at_level(logging.INFO, logger="platform_core.app"):
        await platform_factory()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job runner")]
    assert line.startswith("job runner: embedded")
