"""Configuration: ``[core]`` of ``plugins.toml`` plus ``PLATFORM_*`` environment overrides.

``PLATFORM_CONFIG`` names the file (default ``./plugins.toml``); a missing file means
defaults. The file's layout::

    [core]
    database_url = "sqlite+aiosqlite:///./var/platform.db"
    strict = false

    [plugins]
    enabled = ["inventory", "scheduler"]

    [plugins.inventory]      # settings validated by the plugin's own model
    some_key = 1
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from platform_core.errors import ConfigError

log = logging.getLogger("platform_core.config")

DEFAULT_CONFIG = "plugins.toml"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/platform.db"
ENV_PREFIX = "PLATFORM_"
DATABASE_SCHEMES = ("postgresql+asyncpg", "sqlite+aiosqlite")
"""The database URL schemes the platform runs on (it is asynchronous end to end)."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_SECRET_KEY_BYTES = 32
ENV_NOT_SETTINGS = ("PLATFORM_CONFIG",)
"""``PLATFORM_*`` variables that are not ``[core]`` settings (never warned about)."""
ENV_OTHER_PREFIXES = ("PLATFORM_TEST_", "PLATFORM_BENCH_")
"""Prefixes of variables used by the test suite and the benchmarks, not by the platform."""


class AuthSettings(BaseModel):
    """``[core.auth]``: token lifetimes and login rate limits."""

    jwt_ttl_seconds: int = Field(default=900, gt=0, le=86400)
    login_attempts: int = Field(default=5, gt=0)
    cache_seconds: float = Field(default=5.0, ge=0, le=300)
    login_window_seconds: int = Field(default=60, gt=0)


class JobsSettings(BaseModel):
    """``[core.jobs]``: the runner, leases and run history."""

    broker_url: str | None = Field(
        default=None, description="redis://... selects the distributed runner (taskiq)"
    )
    history_days: int = Field(default=30, gt=0)
    lease_seconds: int = Field(default=60, ge=5)
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    concurrency: int = Field(
        default=4, gt=0, le=1000, description="runs one serve process executes at once"
    )

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        """A Redis URL (``redis://``, ``rediss://`` or ``unix://``), or unset."""
        if value is None or not value.strip():
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise ValueError(
                "must be a Redis URL: redis://host:6379/0, rediss://... (TLS) or "
                "unix:///path/to/redis.sock"
            )
        return value.strip()


class DatabaseSettings(BaseModel):
    """``[core.database]``: how long to wait for the database before answering 503, and how
    many connections one process keeps."""

    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    statement_timeout_seconds: float = Field(default=10.0, gt=0, le=86400)
    pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    pool_size: int = Field(default=10, ge=1, le=1000)
    max_overflow: int = Field(default=5, ge=0, le=1000)


class EventsSettings(BaseModel):
    """``[core.events]``: handler retries and outbox retention."""

    handler_attempts: int = Field(default=8, gt=0, le=100)
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    retention_days: int = Field(default=30, gt=0)


class WebhooksSettings(BaseModel):
    """``[core.webhooks]``: delivery timeout, retries, secret rotation and allowed targets.

    ``allow`` lists networks (``127.0.0.0/8``, ``10.1.2.3``, ``fd00::/8``) and host names
    webhooks may be sent to besides public addresses (private, loopback, link-local and
    metadata addresses are refused otherwise; see docs/webhooks.md).
    """

    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    retry_hours: float = Field(default=24.0, gt=0, le=24 * 7)
    rotation_overlap_hours: float = Field(default=24.0, ge=0, le=24 * 7)
    allow: list[str] = Field(default_factory=list, max_length=1000)

    @field_validator("allow")
    @classmethod
    def _check_allow(cls, value: list[str]) -> list[str]:
        from platform_core.webhooks.targets import parse_allow

        parse_allow(value)  # ValueError names the bad entry
        return value


class IdempotencySettings(BaseModel):
    """``[core.idempotency]``: how long idempotency keys are kept, and their lock."""

    ttl_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    lock_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="a claimed key whose request did not finish is taken over after this",
    )


class RedisSettings(BaseModel):
    """``[core.redis]``: the Redis that processes share (login limits, credential invalidation).

    ``url`` defaults to the Redis of ``[core.jobs] broker_url``; with neither set, login limits
    and the credential cache stay per process (see docs/scaling.md). ``prefix`` starts every
    key and channel, so several platforms (or test runs) can share one Redis.
    """

    url: str | None = Field(default=None, description="redis://host:6379/0 (default: broker's)")
    prefix: str = Field(default="platform", min_length=1, max_length=64, pattern=r"^[\w.:-]+$")

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class NotificationsSettings(BaseModel):
    """``[core.notifications]``: the live stream ``GET /api/core/notifications/stream``.

    A comment line (``: ping``) is sent every ``heartbeat_seconds``; the credential is checked
    again then, so a revoked token ends its stream within that time. ``max_streams_per_user``
    open streams per user and process; one more is answered 429.
    """

    heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    max_streams_per_user: int = Field(default=5, gt=0, le=1000)


class ShutdownSettings(BaseModel):
    """``[core.shutdown]``: what ``platformctl serve`` does on SIGTERM.

    First ``/readyz`` answers 503 for ``drain_seconds`` while requests are still served (a
    load balancer stops sending new ones), then the listener closes and requests in flight
    get up to ``grace_seconds`` to finish.
    """

    drain_seconds: float = Field(default=2.0, ge=0, le=300)
    grace_seconds: int = Field(default=30, ge=0, le=3600)


class CoreSettings(BaseSettings):
    """``[core]`` settings; every key can be overridden with ``PLATFORM_<KEY>``."""

    model_config = SettingsConfigDict(
        env_prefix="PLATFORM_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = DEFAULT_DATABASE_URL
    strict: bool = False
    ready_with_isolated_plugins: bool = Field(
        default=True,
        description="false: /readyz answers 503 while an enabled plugin is isolated or missing",
    )
    secret_key: str | None = None
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: str = "INFO"
    metrics_public: bool = True
    background: bool = True
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks whose X-Forwarded-For/-Proto headers are believed",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
    notifications: NotificationsSettings = Field(default_factory=NotificationsSettings)

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        """Only the asynchronous drivers the platform ships with."""
        scheme, sep, _ = value.partition("://")
        if not sep or scheme.lower() not in DATABASE_SCHEMES:
            shown = f"{scheme!r}" if sep else "none"
            raise ValueError(
                f"unsupported database URL scheme {shown}: use "
                "postgresql+asyncpg://user:password@host:5432/db or "
                "sqlite+aiosqlite:///path/to/file.db"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_length(cls, value: str | None) -> str | None:
        """A signing key short enough to guess is refused (the value is never echoed)."""
        if value is not None and len(value.encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_BYTES} bytes (it has {len(value.encode())}); "
                "generate one with `openssl rand -base64 48`, or unset it to let the "
                "platform generate var/secret.key"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        """One of the standard level names, any case."""
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(
                f"unknown log level {value[:40]!r}: use one of {', '.join(LOG_LEVELS)}"
            )
        return level

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        """Each entry is an IP address or a network in CIDR notation."""
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/8)"
                ) from None
        return [entry.strip() for entry in value]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the file's ``[core]`` table (passed as init values)."""
        return env_settings, init_settings


@dataclass
class Config:
    """The whole configuration: core settings, enabled plugins and their raw settings."""

    path: Path
    core: CoreSettings
    enabled: list[str] = field(default_factory=list)
    plugin_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Problems that do not stop the platform (unknown ``PLATFORM_*`` variables)."""

    def plugin_table(self, name: str) -> dict[str, Any]:
        """The raw ``[plugins.<name>]`` table (empty when absent)."""
        return self.plugin_tables.get(name, {})

    @property
    def var_dir(self) -> Path:
        """Directory for local state (SQLite file, generated secret), beside the config."""
        return self.path.parent / "var"


def config_path() -> Path:
    """The config file's path: ``PLATFORM_CONFIG`` or ``./plugins.toml``."""
    return Path(os.environ.get("PLATFORM_CONFIG", DEFAULT_CONFIG))


def _env_names() -> dict[str, str]:
    """``PLATFORM_*`` variables of the environment by upper-cased name (matching is caseless)."""
    return {k.upper(): k for k in os.environ if k.upper().startswith(ENV_PREFIX)}


def _env_variable(loc: tuple[Any, ...], env: dict[str, str]) -> str | None:
    """The environment variable a value at ``loc`` came from, None when it came from the file.

    ``PLATFORM_AUTH__JWT_TTL_SECONDS`` before ``PLATFORM_AUTH`` (a JSON object).
    """
    parts = [str(p).upper() for p in loc if not isinstance(p, int)]
    for depth in range(len(parts), 0, -1):
        name = ENV_PREFIX + "__".join(parts[:depth])
        if name in env:
            return env[name]
    return None


def _format_validation(path: Path, section: str, exc: ValidationError) -> str:
    env = _env_names()
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(table)"
        message = err["msg"].removeprefix("Value error, ")
        variable = _env_variable(err["loc"], env)
        if variable is not None:
            parts.append(f"environment variable {variable} ([{section}] key '{key}'): {message}")
        else:
            parts.append(f"{path} [{section}] key '{key}': {message}")
    return "; ".join(parts)


def _format_settings_error(exc: SettingsError) -> str:
    """pydantic-settings' parse error (a list or table that is not JSON), naming the variable."""
    text = str(exc)
    env = _env_names()
    for name, original in env.items():
        field_name = name.removeprefix(ENV_PREFIX).split("__")[0].lower()
        if f'"{field_name}"' in text:
            return (
                f"environment variable {original}: not valid JSON "
                "(lists and tables are JSON, e.g. '[\"10.0.0.0/8\"]')"
            )
    return f"environment: {text}"


def unknown_env_variables(enabled: list[str]) -> list[str]:
    """One warning per ``PLATFORM_*`` variable that no setting reads (a misspelling, mostly).

    Known: every ``[core]`` key (``PLATFORM_<KEY>``, nested ``PLATFORM_<TABLE>__<KEY>``),
    ``PLATFORM_CONFIG``, the test and benchmark variables, and ``PLATFORM_<PLUGIN>_*`` of an
    enabled plugin (its own variables, e.g. the scheduler's credentials).
    """
    known = {ENV_PREFIX + name.upper() for name in CoreSettings.model_fields}
    for name, info in CoreSettings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            known |= {f"{ENV_PREFIX}{name.upper()}__{sub.upper()}" for sub in model.model_fields}
    plugin_prefixes = tuple(f"{ENV_PREFIX}{p.upper()}_" for p in enabled)
    warnings = []
    for upper, original in sorted(_env_names().items()):
        if (
            upper in known
            or upper in ENV_NOT_SETTINGS
            or upper.startswith(ENV_OTHER_PREFIXES)
            or (plugin_prefixes and upper.startswith(plugin_prefixes))
        ):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"environment variable {original} is not a setting and is ignored{hint}")
    return warnings


def load_config(path: Path | str | None = None, **overrides: Any) -> Config:
    """Read and validate the configuration; raise ``ConfigError`` naming file, section, key."""
    path = Path(path) if path is not None else config_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    elif "PLATFORM_CONFIG" in os.environ and path == config_path():
        raise ConfigError(f"{path}: PLATFORM_CONFIG names a file that does not exist")
    problems: list[str] = []  # every invalid key is reported at once, not just the first
    problems += [
        f"{path}: unknown section [{name}] (expected core, plugins)"
        for name in sorted(set(data) - {"core", "plugins"})
    ]
    core_table = dict(data.get("core", {}))
    core_table.update(overrides)
    core: CoreSettings | None = None
    try:
        core = CoreSettings(**core_table)
    except ValidationError as exc:
        problems.append(_format_validation(path, "core", exc))
    except SettingsError as exc:
        problems.append(_format_settings_error(exc))
    plugins_table = dict(data.get("plugins", {}))
    enabled = plugins_table.pop("enabled", [])
    if not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled):
        problems.append(f"{path} [plugins] key 'enabled': must be a list of plugin names")
    problems += [
        f"{path} [plugins] key '{name}': expected a [plugins.{name}] table"
        for name, table in plugins_table.items()
        if not isinstance(table, dict)
    ]
    if problems or core is None:
        raise ConfigError("; ".join(problems))
    cfg = Config(
        path=path, core=core, enabled=list(dict.fromkeys(enabled)), plugin_tables=plugins_table
    )
    cfg.warnings = unknown_env_variables(cfg.enabled)
    for warning in cfg.warnings:
        log.warning(warning)
    if core.database_url == DEFAULT_DATABASE_URL:
        core.database_url = f"sqlite+aiosqlite:///{cfg.var_dir / 'platform.db'}"
    return cfg


def secret_key(cfg: Config) -> str:
    """The signing key: ``[core] secret_key``, else one generated once under ``var/``."""
    if cfg.core.secret_key:
        return cfg.core.secret_key
    key_file = cfg.var_dir / "secret.key"
    if key_file.exists():
        return key_file.read_text().strip()
    cfg.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
