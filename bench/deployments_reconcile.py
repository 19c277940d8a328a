"""No-op reconcile of many apps against kmock's Kubernetes emulator: wall time and writes.

A platform with the deployments plugin is booted in-process on SQLite (or PostgreSQL with
``--database-url``), its one cluster being the emulator on loopback. ``--apps`` apps
(``--per-user`` per user, static-site template) are created through the service and applied
by the apply job; then the reconcile job runs over them with nothing drifted. Printed: the
wall time of that reconcile, the write requests our gateway sent, the non-GET requests the
emulator saw during it (an independent count), the GET (list) requests it made, and whether
every app stayed ``synced``. kmock's request journal is emptied between phases (it matches
each request against every earlier one); the reconcile itself runs on an empty journal,
which still grows during it, so the emulator's own cost is part of the wall time.

Targets: under 10 s for 1,000 apps, 0 writes.
Run: ``.venv/bin/python bench/deployments_reconcile.py [--apps 1000] [--per-user 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import header, make_config, row
from platform_deployments.emulator import emulator
from platform_deployments.models import App
from platform_deployments.runtime import env_of
from platform_deployments.schemas.apps import AppCreate
from platform_deployments.service import apps, sync
from platform_deployments.service.apps import Env
from platform_deployments.service.gateway import KINDS
from sqlalchemy import func, select, update

from platform_core import Principal
from platform_core.app import boot
from platform_core.migrate import upgrade


async def seed_emulator(ctx: Any, env: Env, kube: Any) -> None:
    """Put every app's desired objects (built by the plugin's builders) in the emulator's
    store and mark the apps synced: the state right after a successful apply."""
    import kmock

    async with ctx.db.session() as session:
        rows = list((await session.scalars(select(App).order_by(App.id))).all())
        work = await sync.load_work(session, env, rows)
    seen: set[tuple[str, str | None, str]] = set()
    for item in work:
        for obj in item.namespace_objects + item.objects:
            meta = obj["metadata"]
            key = (obj["kind"], meta.get("namespace"), meta["name"])
            if key in seen:
                continue
            seen.add(key)
            spec = KINDS[obj["kind"]]
            parts = spec.prefix.strip("/").split("/")
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            stored = json.loads(json.dumps(obj))
            if obj["kind"] == "Secret":  # the API server turns stringData into data
                stored["data"] = stored.pop("stringData")
            kube.emu.objects[
                kmock.resource(group, version, spec.plural), meta.get("namespace"), meta["name"]
            ] = stored
    async with ctx.db.session() as session:
        await session.execute(update(App).values(state="synced", applied_revision=App.revision))


async def main(args: argparse.Namespace) -> None:
    async with emulator() as kube:
        with tempfile.TemporaryDirectory() as tmp:
            config = make_config(
                Path(tmp), args.database_url, enabled=["deployments"], background=False
            )
            config.plugin_tables["deployments"] = {
                "clusters": {"bench": {"host": kube.url}},
                "base_domain": "apps.bench",
                "quota": {
                    "max_apps": args.per_user,
                    "max_replicas": args.per_user,
                    "cpu_millis": 100_000,
                    "memory_mib": 100_000,
                },
            }
            ctx = boot(config)
            await upgrade(ctx.db, ctx.state["migration_targets"])
            env = env_of(ctx)
            started = time.perf_counter()
            for n in range(args.apps):
                user = n // args.per_user + 1
                caller = Principal(
                    user_id=user, username=f"u{user}", role="member", scopes=frozenset()
                )
                async with ctx.db.session() as session:
                    await apps.create_app(
                        session, env, caller, AppCreate(name=f"app{n}", template="static-site")
                    )
            created = time.perf_counter() - started
            started = time.perf_counter()
            if args.seed == "api":
                async with ctx.db.session() as session:
                    ids = list((await session.scalars(select(App.id).order_by(App.id))).all())
                for chunk in range(0, len(ids), args.per_user):
                    await sync.apply_pending(
                        ctx.db, env, app_ids=ids[chunk : chunk + args.per_user]
                    )
                    kube.forget_requests()  # kmock's journal makes each request O(requests so far)
            else:
                await seed_emulator(ctx, env, kube)
            applied = time.perf_counter() - started
            async with ctx.db.session() as session:
                synced = await session.scalar(select(func.count()).where(App.state == "synced"))
            runs = {}
            for mode in ("cluster", "namespace"):
                mode_env = Env(
                    settings=env.settings.model_copy(update={"reconcile_lists": mode}), box=env.box
                )
                kube.forget_requests()
                started = time.perf_counter()
                result = await sync.reconcile(ctx.db, mode_env)
                wall = time.perf_counter() - started
                during = list(kube.emu)
                writes_seen = sum(1 for r in during if not str(r.method).upper().endswith("GET"))
                runs[mode] = (wall, result.get("writes", 0), writes_seen, len(during) - writes_seen)
            async with ctx.db.session() as session:
                still = await session.scalar(select(func.count()).where(App.state == "synced"))
            await ctx.db.dispose()

    header(f"deployments: no-op reconcile of {args.apps} apps ({args.apps // args.per_user} users)")
    row("create (service, stored only)", f"{created:.2f} s")
    how = (
        "apply job through the API" if args.seed == "api" else "objects put in the emulator's store"
    )
    row(f"first sync ({how})", f"{applied:.2f} s, {synced} synced")
    for mode, (wall, writes, seen, lists) in runs.items():
        label = "one list per kind" if mode == "cluster" else "one list per kind and namespace"
        row(f"no-op reconcile, {label}: wall time", f"{wall:.2f} s (target < 10 s)")
        row(
            f"no-op reconcile, {label}: writes (gateway / emulator)",
            f"{writes} / {seen} (target 0)",
        )
        row(f"no-op reconcile, {label}: list requests", str(lists))
    row("apps synced after the reconciles", f"{still}/{args.apps}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--seed",
        choices=("store", "api"),
        default="store",
        help="put the desired objects in the emulator's store (fast) or apply "
        "them with the apply job through the API (slow: kmock's cost per request)",
    )
    asyncio.run(main(parser.parse_args()))
