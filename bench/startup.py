"""Startup cost: from ``boot()`` to a ready app, for the core alone and with 200 extra plugins.

What is timed, per scenario (in one process, after a warm-up boot that pays the core's own
lazy imports):

- *import*: executing the plugins' modules (what loading their entry points costs);
- *boot*: ``platform_core.app.boot(config, extra_plugins=...)`` (plugin manager, metadata,
  settings, models, jobs, scopes);
- *create_app*: the FastAPI app with every plugin's router mounted;
- *startup*: the app's lifespan startup (``platform_startup`` hooks);
- *total* = the four above, with migrations already applied;
- separately, *migrations*: the first ``upgrade`` of an empty database, the ``status``
  check that ``platformctl serve`` runs on every start (with or without ``--migrate``) to
  find pending migrations, and an ``upgrade`` of an up-to-date database (a no-op
  ``platformctl db upgrade``);
- for information, building the OpenAPI schema (the first ``/openapi.json`` or ``/docs``).

Scenarios: the core with the first-party plugins enabled (those of ``plugins/*/`` that are
installed; when there are none yet, as at the time of writing, this is the core alone, its
internal ``core`` plugin included), then the same plus 200 generated plugins. Each generated
plugin is a module file written to a temporary directory and imported with
``importlib.util.spec_from_file_location`` (no ``sys.path`` change), with a router (one GET
route), a model (its own table in ``platform_core.db.plugin_metadata()`` plus one alembic
revision file) and a job (``platform_core.JobSpec``).

Target: under 10 ms per extra plugin (total with 200 plugins minus total of the baseline,
divided by 200). The database is a SQLite file in a temporary directory. Figures only:
nothing is asserted.

Run: ``.venv/bin/python bench/startup.py [--plugins N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from _common import first_party_plugins, header, make_config, median, row, stopwatch

from platform_core.app import boot, create_app
from platform_core.migrate import status, upgrade

TARGET_MS_PER_PLUGIN = 10.0

PLUGIN_TEMPLATE = '''\
"""Generated benchmark plugin {name}: one route, one table, one job."""

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter

from platform_core import JobSpec, Models, hookimpl
from platform_core.db import plugin_metadata

metadata = plugin_metadata()
items = sa.Table(
    "{name}_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(100), nullable=False),
)
router = APIRouter()


@router.get("/items")
async def list_items() -> list[dict[str, object]]:
    """Nothing to list: the route exists to be mounted."""
    return []


async def tick() -> None:
    """A periodic job that does nothing."""


@hookimpl
def platform_models() -> Models:
    return Models(metadata, Path(__file__).resolve().parent / "migrations")


@hookimpl
def platform_routes() -> list[APIRouter]:
    return [router]


@hookimpl
def platform_jobs() -> list[JobSpec]:
    return [JobSpec("tick", tick, every=timedelta(minutes=5))]
'''

REVISION_TEMPLATE = '''\
"""{name}: items table

Revision ID: {name}_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "{name}_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "{name}_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_{name}_items"),
    )


def downgrade() -> None:
    op.drop_table("{name}_items")
'''


def generate_plugins(directory: Path, count: int) -> dict[str, Path]:
    """Write ``count`` plugin modules (with migrations) under ``directory``; name -> file."""
    files = {}
    for i in range(count):
        name = f"gen{i:04d}"
        pkg = directory / name
        (pkg / "migrations" / "versions").mkdir(parents=True)
        (pkg / "plugin.py").write_text(PLUGIN_TEMPLATE.format(name=name))
        (pkg / "migrations" / "versions" / f"{name}_0001_items.py").write_text(
            REVISION_TEMPLATE.format(name=name)
        )
        files[name] = pkg / "plugin.py"
    return files


def import_plugins(files: dict[str, Path]) -> dict[str, ModuleType]:
    """Import each generated module from its file (not registered in ``sys.modules``)."""
    modules = {}
    for name, path in files.items():
        spec = importlib.util.spec_from_file_location(f"bench_generated_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


async def _migrate(config: Any, modules: dict[str, ModuleType]) -> dict[str, float]:
    """Apply migrations to an empty database, then time the no-op upgrade and status check."""
    ctx = boot(config, extra_plugins=modules)
    targets = ctx.state["migration_targets"]
    try:
        with stopwatch() as first:
            await upgrade(ctx.db, targets)
        with stopwatch() as again:
            await upgrade(ctx.db, targets)
        with stopwatch() as check:
            pending = [s.plugin for s in await status(ctx.db, targets) if s.pending]
        assert not pending, f"migrations still pending: {pending}"
    finally:
        await ctx.db.dispose()
    return {"first": first[0], "again": again[0], "status": check[0], "targets": len(targets)}


async def _start_once(config: Any, files: dict[str, Path]) -> dict[str, float]:
    """One measured start: import, boot, create_app, lifespan startup (then shut down)."""
    with stopwatch() as t_import:
        modules = import_plugins(files)
    with stopwatch() as t_boot:
        ctx = boot(config, extra_plugins=modules)
    with stopwatch() as t_app:
        app = create_app(ctx)
    lifespan = app.router.lifespan_context(app)
    with stopwatch() as t_start:
        await lifespan.__aenter__()
    with stopwatch() as t_openapi:
        app.openapi()
    await lifespan.__aexit__(None, None, None)
    failed = {r.name: r.reason for r in ctx.plugins.records.values() if r.enabled and not r.active}
    if any(name in files for name in failed):
        raise SystemExit(f"generated plugins failed to load: {failed}")
    return {
        "import": t_import[0],
        "boot": t_boot[0],
        "create_app": t_app[0],
        "startup": t_start[0],
        "total": t_import[0] + t_boot[0] + t_app[0] + t_start[0],
        "openapi": t_openapi[0],
        "routes": len(app.routes),
        "jobs": len(ctx.jobs),
        "failed": failed,
    }


def run_scenario(
    label: str, directory: Path, files: dict[str, Path], rounds: int, enabled: list[str]
) -> tuple[float, float]:
    """Migrate once, then start ``rounds`` times; print the figures.

    Returns the median total (boot to ready) and the pending-migration check, in ms.
    """
    config = make_config(directory, enabled=enabled)
    header(f"{label}: {len(files)} extra plugins, {rounds} rounds (median of each figure)")
    mig = asyncio.run(_migrate(config, import_plugins(files)))
    row(f"migrations: first upgrade ({mig['targets']:.0f} plugins)", f"{mig['first']:9.1f} ms")
    row("migrations: pending check, every serve start (status)", f"{mig['status']:9.1f} ms")
    row("migrations: upgrade when up to date (db upgrade)", f"{mig['again']:9.1f} ms")
    results = [asyncio.run(_start_once(config, files)) for _ in range(rounds)]
    for key in ("import", "boot", "create_app", "startup", "total"):
        row(key, f"{median([r[key] for r in results]):9.1f} ms")
    openapi = median([r["openapi"] for r in results])
    row("(info) OpenAPI schema build, first /openapi.json", f"{openapi:9.1f} ms")
    row("(info) routes / jobs", f"{results[0]['routes']:9.0f} / {results[0]['jobs']:.0f}")
    for name, reason in results[0]["failed"].items():
        row(f"(warning) first-party plugin {name} is not active", reason)
    return median([r["total"] for r in results]), mig["status"]


def main() -> None:
    """Run both scenarios and print the per-plugin cost against the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=200, help="generated plugins (200)")
    parser.add_argument("--rounds", type=int, default=5, help="measured starts per scenario (5)")
    args = parser.parse_args()
    print("startup benchmark: boot() -> ready app; SQLite file in a temp dir; migrations applied")
    first_party = first_party_plugins()
    if first_party:
        print(f"first-party plugins enabled in every scenario: {', '.join(first_party)}")
    else:
        print("first-party plugins: none installed yet, so the baseline is the core alone")
    baseline = "core + first-party plugins" if first_party else "core alone"
    with tempfile.TemporaryDirectory(prefix="platform-bench-startup-") as tmp:
        root = Path(tmp)
        (root / "warmup").mkdir()
        warm_config = make_config(root / "warmup", enabled=first_party)
        asyncio.run(_migrate(warm_config, {}))
        asyncio.run(_start_once(warm_config, {}))  # pays the lazy imports, not measured
        (root / "core").mkdir()
        base, base_check = run_scenario(baseline, root / "core", {}, args.rounds, first_party)
        (root / "many").mkdir()
        files = generate_plugins(root / "generated", args.plugins)
        many, many_check = run_scenario(
            f"{baseline} + generated plugins", root / "many", files, args.rounds, first_party
        )
    count = max(args.plugins, 1)
    per_plugin = (many - base) / count
    with_check = (many + many_check - base - base_check) / count
    header("result")
    row(f"{baseline}: boot -> ready", f"{base:9.1f} ms")
    row(f"{baseline} + {args.plugins} plugins: boot -> ready", f"{many:9.1f} ms")
    verdict = "within" if per_plugin < TARGET_MS_PER_PLUGIN else "OVER"
    target = f"target < {TARGET_MS_PER_PLUGIN:g} ms"
    row("per extra plugin", f"{per_plugin:9.2f} ms  ({verdict} {target})")
    row("per extra plugin, with serve's pending-migration check", f"{with_check:9.2f} ms")


if __name__ == "__main__":
    main()
