"""Event names and subscription patterns (``a.b.c``, ``a.*``, ``*``)."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
PATTERN_RE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$")


def valid_name(name: str) -> bool:
    """True for a dotted event name whose first part is the publishing plugin."""
    return bool(NAME_RE.fullmatch(name))


def valid_pattern(pattern: str) -> bool:
    """True for ``*``, an event name, or a dotted prefix followed by ``.*``."""
    return bool(PATTERN_RE.fullmatch(pattern))


def matches(pattern: str, name: str) -> bool:
    """True when ``name`` is selected by ``pattern`` (``prefix.*`` covers every depth)."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1])
    return pattern == name
