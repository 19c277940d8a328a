"""Cheap facts for ``platformctl --help``: enabled and installed plugin names, no imports.

Nothing here imports ``platform_core`` (pydantic, SQLAlchemy) or any plugin module: the
config file is read with ``tomllib`` and plugins are named by their entry points.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

# Duplicated from platform_core.manager.ENTRY_POINT_GROUP to keep --help light (a test
# checks they agree).
ENTRY_POINT_GROUP = "platform_core.plugins"
DEFAULT_CONFIG = "plugins.toml"


def config_file() -> Path:
    """The config file ``platform_core.config.load_config`` reads by default."""
    return Path(os.environ.get("PLATFORM_CONFIG", DEFAULT_CONFIG))


def enabled_names() -> list[str]:
    """``[plugins] enabled`` of the config file; empty when absent or unreadable."""
    try:
        data = tomllib.loads(config_file().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    enabled = data.get("plugins", {}).get("enabled", [])
    if not isinstance(enabled, list):
        return []
    return list(dict.fromkeys(n for n in enabled if isinstance(n, str)))


def installed_names() -> set[str]:
    """Names of the installed plugins (entry points of the plugin group)."""
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
