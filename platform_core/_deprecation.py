"""Old import paths of names that moved to ``platform_core``: they keep working, and warn.

A module lists its moved names with :func:`moved_names`; reading one of them from outside the
platform (a plugin, a test, a script) raises :class:`PlatformDeprecationWarning` naming the new
path, the way pytest and pluggy deprecate. The core and the CLI keep reading them from their
implementation modules without a warning: those modules are internal, not deprecated for them.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from typing import Any

INTERNAL_PACKAGES = frozenset({"platform_core", "platformctl"})
"""Top-level packages whose modules read moved names without a warning."""

REMOVED_IN = "0.3"
"""The first version without the old paths (kept for at least one minor version: 0.2)."""

_MOVED: dict[str, dict[str, str]] = {}
_CORE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class PlatformDeprecationWarning(DeprecationWarning):
    """A deprecated platform API was used; the message names its replacement."""

    __module__ = "platform_core"


def _from_outside(frame: types.FrameType | None) -> bool:
    """True when the code reading the attribute belongs to neither the core nor the CLI."""
    while frame is not None and frame.f_globals.get("__name__", "").startswith("importlib"):
        frame = frame.f_back
    if frame is None:
        return True
    caller = str(frame.f_globals.get("__name__", ""))
    if caller.split(".", 1)[0] in INTERNAL_PACKAGES:
        return False
    # Files loaded under another name (the core's alembic revisions) count by location.
    return not frame.f_code.co_filename.startswith(_CORE_DIR)


class _ModuleWithMovedNames(types.ModuleType):
    """A module whose moved names warn when read from outside the platform."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        moved = _MOVED.get(super().__getattribute__("__name__"))
        if moved and name in moved and _from_outside(sys._getframe(1)):
            module = super().__getattribute__("__name__")
            warnings.warn(
                f"{module}.{name} is deprecated and will be removed in platform-core "
                f"{REMOVED_IN}; import {moved[name]} instead",
                PlatformDeprecationWarning,
                stacklevel=2,
            )
        return value


def moved_names(module_name: str, names: dict[str, str]) -> None:
    """Mark ``names`` of ``module_name`` (a loaded module) as moved to the given new paths."""
    _MOVED.setdefault(module_name, {}).update(names)
    module = sys.modules[module_name]
    if not isinstance(module, _ModuleWithMovedNames):
        module.__class__ = _ModuleWithMovedNames


def deprecated_paths() -> dict[str, str]:
    """Every old path (``module.name``) marked so far, with its new path."""
    return {f"{m}.{n}": new for m, names in _MOVED.items() for n, new in names.items()}
