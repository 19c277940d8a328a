"""The import-linter contracts, derived from the installed plugins' entry points.

A plugin may import only ``platform_core``, ``platform_core.testing`` and the ``api`` module
of a plugin it ``requires``; the core never imports the CLI or a plugin; service layers hold
no HTTP. The list of plugins comes from the entry points (group ``platform_core.plugins``), so
an installed plugin cannot be left unchecked::

    python -m platform_core.lintcontracts            # print the [tool.importlinter] section
    python -m platform_core.lintcontracts --write    # write it into ./pyproject.toml
    python -m platform_core.lintcontracts --check    # exit 1 when pyproject.toml is stale

``make lint`` runs ``--check`` before ``lint-imports``. Third-party plugin repositories can
run it too, in an environment where their plugin is installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

ENTRY_POINT_GROUP = "platform_core.plugins"  # the same as platform_core.manager's
PUBLIC_CORE_MODULES = frozenset({"platform_core", "platform_core.testing"})
HTTP_MODULES = frozenset({"routes", "plugin", "cli", "deps"})
"""A plugin's modules that may use FastAPI: routes, the hook wiring, the CLI."""

CORE_SERVICE_MODULES = [
    "platform_core.auth.service",
    "platform_core.auth.passwords",
    "platform_core.auth.tokens",
    "platform_core.config",
    "platform_core.manager",
    "platform_core.migrate",
    "platform_core.db",
    "platform_core.webhooks.service",
    "platform_core.webhooks.delivery",
    "platform_core.webhooks.signing",
    "platform_core.events.outbox",
    "platform_core.events.dispatcher",
    "platform_core.notifications.service",
    "platform_core.jobs.service",
    "platform_core.jobs.execute",
    "platform_core.jobs.schedule",
    "platform_core.jobs.planner",
    "platform_core.jobs.embedded",
    "platform_core.jobs.distributed",
]


@dataclass(frozen=True)
class InstalledPlugin:
    """An installed plugin: its name, its top-level package and the plugins it requires."""

    name: str
    package: str
    requires: tuple[str, ...]


def installed_plugins() -> list[InstalledPlugin]:
    """Every plugin installed in this environment, by name."""
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        package = ep.value.split(":", 1)[0].split(".", 1)[0]
        found.append(InstalledPlugin(ep.name, package, tuple(_requires(ep.load()))))
    return sorted(found, key=lambda p: p.name)


def _requires(target: Any) -> list[str]:
    """The names in ``platform_plugin_meta().requires`` of a plugin object or module."""
    meta_hook = getattr(target, "platform_plugin_meta", None)
    meta = meta_hook() if callable(meta_hook) else None
    names = []
    for spec in getattr(meta, "requires", None) or []:
        try:
            names.append(Requirement(spec).name)
        except InvalidRequirement:
            continue  # the platform isolates such a plugin; nothing to allow here
    return names


def _children(package: str) -> list[str]:
    """The direct submodules and subpackages of ``package`` (empty for a module)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(
        f"{package}.{m.name}" for m in pkgutil.iter_modules(spec.submodule_search_locations)
    )


def _walk(package: str) -> list[str]:
    """``package`` and every module below it."""
    out = [package]
    for child in _children(package):
        out.extend(_walk(child))
    return out


def _http_free(plugin: InstalledPlugin) -> list[str]:
    """The plugin's modules that must not import FastAPI (all but routes, wiring and CLI)."""
    out: list[str] = []
    for module in _walk(plugin.package)[1:]:
        parts = module.split(".")[1:]
        if parts[0] in HTTP_MODULES or "migrations" in parts:
            continue
        if not any(module.startswith(m + ".") for m in out):  # a package covers its modules
            out.append(module)
    return out


def contracts(plugins: list[InstalledPlugin]) -> dict[str, Any]:
    """The ``[tool.importlinter]`` section for these plugins."""
    packages = [p.package for p in plugins]
    by_name = {p.name: p for p in plugins}
    private_core = [m for m in _children("platform_core") if m not in PUBLIC_CORE_MODULES]
    items: list[dict[str, Any]] = [
        {
            "name": "The core never imports the CLI",
            "type": "forbidden",
            "source_modules": ["platform_core"],
            "forbidden_modules": ["platformctl"],
        },
        {
            "name": "Services hold no HTTP layer: the core's service modules never import FastAPI",
            "type": "forbidden",
            "source_modules": CORE_SERVICE_MODULES,
            "forbidden_modules": ["fastapi", "starlette"],
        },
    ]
    if packages:
        items.append(
            {
                "name": "The core and the CLI never import a plugin",
                "type": "forbidden",
                "source_modules": ["platform_core", "platformctl"],
                "forbidden_modules": packages,
            }
        )
    for plugin in plugins:
        others: list[str] = []
        allowed = []
        for other in plugins:
            if other is plugin:
                continue
            if other.name in plugin.requires:
                api = f"{other.package}.api"
                allowed.append(api)
                others.extend(m for m in _children(other.package) if m != api)
            else:
                others.append(other.package)
        missing = [r for r in plugin.requires if r not in by_name]
        note = f" (missing requirements: {', '.join(missing)})" if missing else ""
        items.append(
            {
                "name": f"Plugin {plugin.name} imports only platform_core, platform_core.testing"
                + (f" and {', '.join(allowed)}" if allowed else "")
                + note,
                "type": "forbidden",
                "source_modules": [plugin.package],
                "forbidden_modules": ["platformctl", *private_core, *others],
                "allow_indirect_imports": True,
            }
        )
        http_free = _http_free(plugin)
        if http_free:
            items.append(
                {
                    "name": f"Plugin {plugin.name}: only routes, wiring and CLI use FastAPI",
                    "type": "forbidden",
                    "source_modules": http_free,
                    "forbidden_modules": ["fastapi", "starlette"],
                }
            )
    return {
        "root_packages": ["platform_core", "platformctl", *packages],
        "include_external_packages": True,
        "exclude_type_checking_imports": True,  # platform_core names its lazy exports so
        "contracts": items,
    }


def render(section: dict[str, Any]) -> str:
    """``section`` as TOML, under ``[tool.importlinter]``."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(
        tomlkit.comment(
            "Generated by `python -m platform_core.lintcontracts --write` from the installed "
            "plugins; do not edit."
        )
    )
    table = tomlkit.table(is_super_table=True)
    body = tomlkit.table()
    for key, value in section.items():
        if key == "contracts":
            aot = tomlkit.aot()
            for contract in value:
                item = tomlkit.table()
                for k, v in contract.items():
                    item.add(k, _array(v) if isinstance(v, list) else v)
                aot.append(item)
            body.add(key, aot)
        else:
            body.add(key, _array(value) if isinstance(value, list) else value)
    table.add("importlinter", body)
    doc.add("tool", table)
    return tomlkit.dumps(doc)


def _array(values: list[str]) -> Any:
    import tomlkit

    array = tomlkit.array()
    array.extend(values)
    if len(values) > 3:
        array.multiline(True)
    return array


def _current(pyproject: Path) -> dict[str, Any]:
    import tomlkit

    doc = tomlkit.parse(pyproject.read_text(encoding="utf-8"))
    section = doc.get("tool", {}).get("importlinter", {})
    return dict(tomlkit.loads(tomlkit.dumps({"x": section}))["x"]) if section else {}


def write(pyproject: Path, section: dict[str, Any]) -> None:
    """Replace ``[tool.importlinter]`` (and its contracts) in ``pyproject``, keeping the rest."""
    import tomlkit

    doc = tomlkit.parse(pyproject.read_text(encoding="utf-8"))
    tool = doc.setdefault("tool", tomlkit.table(is_super_table=True))
    if "importlinter" in tool:
        del tool["importlinter"]
    generated = tomlkit.parse(render(section))
    tool.add("importlinter", generated["tool"]["importlinter"])
    pyproject.write_text(tomlkit.dumps(doc), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the generated contracts; 1 when ``--check`` finds them stale."""
    parser = argparse.ArgumentParser(prog="python -m platform_core.lintcontracts")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write them into pyproject.toml")
    group.add_argument("--check", action="store_true", help="fail when pyproject.toml differs")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    section = contracts(installed_plugins())
    if args.write:
        write(args.pyproject, section)
        return 0
    if args.check:
        if _current(args.pyproject) != section:
            print(
                f"{args.pyproject}: [tool.importlinter] does not match the installed plugins; "
                "run `python -m platform_core.lintcontracts --write`",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(render(section))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
