"""Configuration: plugins.toml, PLATFORM_* overrides and errors naming file, section, key."""

from __future__ import annotations

import pytest

from platform_core.config import load_config, secret_key
from platform_core.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "plugins.toml"
    path.write_text(text)
    return path


def test_missing_file_means_defaults_beside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PLATFORM_CONFIG", raising=False)
    monkeypatch.delenv("PLATFORM_DATABASE_URL", raising=False)
    cfg = load_config(tmp_path / "plugins.toml")
    assert cfg.enabled == []
    assert cfg.core.database_url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'platform.db'}"


def test_platform_config_env_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, '[plugins]\nenabled = ["inventory"]\n')
    monkeypatch.setenv("PLATFORM_CONFIG", str(path))
    assert load_config().enabled == ["inventory"]


def test_platform_config_pointing_nowhere_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config()


def test_database_url_env_overrides_file(tmp_path, monkeypatch):
    path = write(tmp_path, '[core]\ndatabase_url = "sqlite+aiosqlite:///from-file.db"\n')
    monkeypatch.setenv("PLATFORM_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert load_config(path).core.database_url == "postgresql+asyncpg://u@h/db"


def test_nested_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_AUTH__JWT_TTL_SECONDS", "120")
    assert load_config(write(tmp_path, "")).core.auth.jwt_ttl_seconds == 120


def test_invalid_core_value_names_file_section_and_key(tmp_path):
    path = write(tmp_path, '[core]\nstrict = "sometimes"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path} [core] key 'strict': ")


def test_unknown_core_key_is_refused(tmp_path):
    path = write(tmp_path, "[core]\ndatabse_url = 'x'\n")
    with pytest.raises(ConfigError, match=r"\[core\] key 'databse_url'"):
        load_config(path)


def test_enabled_must_be_a_list_of_names(tmp_path):
    with pytest.raises(ConfigError, match=r"\[plugins\] key 'enabled'"):
        load_config(write(tmp_path, '[plugins]\nenabled = "inventory"\n'))


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section \[plugin\]"):
        load_config(write(tmp_path, "[plugin]\nenabled = []\n"))


def test_broken_toml_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[core\n"))


def test_plugin_tables_are_kept_for_plugins(tmp_path):
    cfg = load_config(write(tmp_path, '[plugins]\nenabled = ["a"]\n[plugins.a]\nlimit = 3\n'))
    assert cfg.plugin_table("a") == {"limit": 3}
    assert cfg.plugin_table("b") == {}


def test_generated_secret_key_is_stable_and_private(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    first = secret_key(cfg)
    assert secret_key(cfg) == first
    assert len(first) >= 32
    assert (cfg.var_dir / "secret.key").stat().st_mode & 0o077 == 0
