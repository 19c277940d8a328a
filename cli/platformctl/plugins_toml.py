"""Editing ``[plugins] enabled`` in ``plugins.toml`` with tomlkit, keeping comments and layout."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from platformctl.errors import CliError


def _read(path: Path) -> Any:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    if not path.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except TOMLKitError as exc:
        raise CliError(f"{path}: not valid TOML: {exc}") from exc


def _enabled_array(doc: Any, path: Path) -> Any:
    """The ``enabled`` array of ``doc``, creating ``[plugins]`` and the key when missing."""
    import tomlkit

    if "plugins" not in doc:
        doc["plugins"] = tomlkit.table()
    plugins = doc["plugins"]
    if not isinstance(plugins, dict):
        raise CliError(f"{path}: [plugins] must be a table")
    if "enabled" not in plugins:
        plugins["enabled"] = tomlkit.array()
    enabled = plugins["enabled"]
    if not isinstance(enabled, list):
        raise CliError(f"{path} [plugins] key 'enabled': must be a list of plugin names")
    return enabled


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically, keeping its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def enabled_plugins(path: Path) -> list[str]:
    """The names listed in ``[plugins] enabled`` (empty when the file or key is absent)."""
    doc = _read(path)
    plugins = doc.get("plugins", {})
    return [str(n) for n in plugins.get("enabled", [])] if isinstance(plugins, dict) else []


def set_enabled(path: Path, name: str, enabled: bool) -> bool:
    """Add ``name`` to (or remove it from) ``[plugins] enabled``; True when the file changed."""
    doc = _read(path)
    array = _enabled_array(doc, path)
    names = [str(item) for item in array]
    if enabled == (name in names):
        return False
    if enabled:
        array.append(name)
    else:
        for index in reversed([i for i, n in enumerate(names) if n == name]):
            del array[index]
    _write(path, doc.as_string())
    return True
