"""The plugin scaffold: ``create_plugin`` writes a pip-installable third-party plugin.

The templates live in ``template/`` as ``*.tmpl`` files (so linters and pytest skip them)
and are rendered with :class:`string.Template`: ``$name`` (the plugin name), ``$package``
(``platform_<name>``), ``$dist`` (``platform-<name>``), ``$title`` (``CamelCase`` name) and
``$core`` (the supported platform-core versions). In paths, ``__package__`` and
``__name__`` stand for the package and the plugin name. ``platformctl plugins new`` calls it.
"""

from __future__ import annotations

import string
from pathlib import Path

from platform_core.errors import invalid
from platform_core.manager import NAME_RE, RESERVED_NAMES

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
SUFFIX = ".tmpl"

__all__ = ["TEMPLATE_DIR", "create_plugin", "validate_name"]


def validate_name(name: str) -> str:
    """Return ``name`` when it can name a plugin; ``ValidationFailed`` saying why otherwise."""
    if not NAME_RE.fullmatch(name):  # fullmatch: "$" alone would accept a trailing newline
        raise invalid(
            "name",
            f"invalid plugin name {name!r}: 1-40 lowercase letters, digits or _, "
            "starting with a letter",
        )
    if name in RESERVED_NAMES:
        raise invalid("name", f"{name!r} is reserved by the platform")
    return name


def _core_specifier() -> str:
    from platform_core import __version__

    major, minor = (int(p) for p in __version__.split(".")[:2])
    return f">={major}.{minor},<{major + 1}"


def create_plugin(name: str, dest: Path) -> Path:
    """Write a new plugin project ``dest/<name>`` and return its path.

    ``dest`` is the parent directory (``plugins/`` in this repository), created when missing.
    Raises ``platform_core.errors.ValidationFailed`` for an invalid, reserved or already
    installed name and when
    ``dest/<name>`` is a file or a non-empty directory: nothing is ever overwritten.
    """
    validate_name(name)
    from platform_core.manager import discover

    if name in discover():
        raise invalid("name", f"a plugin named {name!r} is already installed")
    project = Path(dest) / name
    if project.exists() and (not project.is_dir() or any(project.iterdir())):
        raise invalid("dest", f"{project} already exists and is not an empty directory")
    package = f"platform_{name}"
    values = {
        "name": name,
        "package": package,
        "dist": f"platform-{name.replace('_', '-')}",
        "title": "".join(part.capitalize() for part in name.split("_")),
        "core": _core_specifier(),
    }
    project.mkdir(parents=True, exist_ok=True)
    for source in sorted(TEMPLATE_DIR.rglob(f"*{SUFFIX}")):
        relative = source.relative_to(TEMPLATE_DIR).as_posix()[: -len(SUFFIX)]
        relative = relative.replace("__package__", package).replace("__name__", name)
        target = project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = string.Template(source.read_text(encoding="utf-8")).substitute(values)
        target.write_text(text, encoding="utf-8")
    return project
