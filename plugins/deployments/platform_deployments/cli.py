"""``platformctl deployments apps list|status|logs|rollback``, ``templates import|export``,
``reconcile`` and ``mongo provision USER``.

Commands act as a platform admin directly on the database (no HTTP); cluster work is done
in the command (``reconcile``) or left to the apply job (``rollback``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from platform_core import PlatformContext, Principal

apps_cli = typer.Typer(help="Users' apps.", no_args_is_help=True)
templates_cli = typer.Typer(help="The template catalogue.", no_args_is_help=True)
mongo_cli = typer.Typer(help="Users' MongoDB databases.", no_args_is_help=True)


def _admin() -> Principal:
    from platform_core import Principal

    return Principal(user_id=0, username="cli", role="admin", scopes=frozenset())


def _run(ctx: typer.Context, work: Any) -> Any:
    from rich.console import Console

    from platform_core import PlatformError, run_command

    try:
        return run_command(ctx.obj, work(ctx.obj))
    except PlatformError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc.detail}", soft_wrap=True)
        raise typer.Exit(1) from None


def list_apps(
    ctx: typer.Context,
    user: Annotated[int | None, typer.Option("--user", help="Only this user's apps.")] = None,
) -> None:
    """List apps with their state and revision."""
    from rich.console import Console
    from rich.table import Table

    from platform_deployments.service import apps

    async def work(platform: PlatformContext) -> list[Any]:
        async with platform.db.session() as session:
            rows, _ = await apps.list_apps(
                session, _admin(), user_id=user, state=None, cursor=None, limit=500
            )
            return [apps.app_out(a, s) for a, s in rows]

    table = Table("id", "user", "name", "state", "revision", "applied", "image", "host")
    for app in _run(ctx, work):
        table.add_row(
            str(app.id),
            str(app.user_id),
            app.name,
            app.state,
            str(app.revision),
            str(app.applied_revision or "-"),
            app.image,
            app.host or "-",
        )
    Console(width=200).print(table)


def app_status(ctx: typer.Context, app_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """An app's stored state and, when its cluster answers, its rollout and pods."""
    from rich.console import Console

    from platform_deployments.runtime import env_of
    from platform_deployments.service import apps, status
    from platform_deployments.service.gateway import ClusterError, ClusterUnreachable, connect

    async def work(platform: PlatformContext) -> tuple[Any, Any, str | None]:
        env = env_of(platform)
        async with platform.db.session() as session:
            app = await apps.get_app(session, _admin(), app_id)
            out = apps.app_out(app, await apps.snapshot_of(session, app))
        cluster = env.settings.clusters.get(app.cluster)
        if cluster is None:
            return out, None, f"cluster {app.cluster!r} is not configured"
        try:
            async with connect(cluster, timeout=env.settings.request_timeout_seconds) as gw:
                ro = status.rollout(await status.deployment(gw, app), stopped=app.stopped)
                return out, (ro, await status.pods(gw, app)), None
        except (ClusterUnreachable, ClusterError) as exc:
            return out, None, str(exc)

    out, live, problem = _run(ctx, work)
    console = Console(width=200)
    console.print(
        f"app {out.id} {out.name} (user {out.user_id}): {out.state}, revision "
        f"{out.revision}, applied {out.applied_revision or '-'}"
    )
    if out.last_error:
        console.print(f"last error: {out.last_error}")
    if live is None:
        console.print(f"cluster: {problem}")
        return
    ro, pods = live
    console.print(f"rollout: {ro.state} ({ro.available_replicas}/{ro.replicas} available)")
    for pod in pods:
        console.print(f"pod {pod.name}: {pod.phase}, ready={pod.ready}, restarts={pod.restarts}")


def app_logs(
    ctx: typer.Context,
    app_id: Annotated[int, typer.Argument(min=1)],
    pod: Annotated[str, typer.Argument()],
    tail: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    since: Annotated[int | None, typer.Option(min=1, help="Seconds.")] = None,
    container: Annotated[str | None, typer.Option()] = None,
) -> None:
    """The last lines of one of an app's pods."""
    from platform_core import ServiceUnavailable
    from platform_deployments.runtime import env_of
    from platform_deployments.service import apps, status
    from platform_deployments.service.gateway import ClusterError, ClusterUnreachable, connect

    async def work(platform: PlatformContext) -> list[str]:
        env = env_of(platform)
        async with platform.db.session() as session:
            app = await apps.get_app(session, _admin(), app_id)
        cluster = env.settings.clusters.get(app.cluster)
        if cluster is None:
            raise ServiceUnavailable(f"cluster {app.cluster!r} is not configured")
        try:
            async with connect(cluster, timeout=env.settings.request_timeout_seconds) as gw:
                return await status.logs(
                    gw, app, pod, container=container, tail=tail, since_seconds=since
                )
        except (ClusterUnreachable, ClusterError) as exc:
            raise ServiceUnavailable(str(exc)) from None

    for line in _run(ctx, work):
        typer.echo(line)


def app_rollback(
    ctx: typer.Context,
    app_id: Annotated[int, typer.Argument(min=1)],
    revision: Annotated[int, typer.Argument(min=1)],
) -> None:
    """Roll an app back to a revision (a new revision; the apply job deploys it)."""
    from platform_deployments.runtime import env_of
    from platform_deployments.service import apps

    async def work(platform: PlatformContext) -> int:
        async with platform.db.session() as session:
            app, _ = await apps.rollback(session, env_of(platform), _admin(), app_id, revision)
            return app.revision

    new = _run(ctx, work)
    typer.echo(f"app {app_id}: revision {new} (rollback to {revision}) waits for the apply job")


def export_templates(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only this template.")] = None,
) -> None:
    """Export active templates as YAML."""
    from platform_deployments.service import templates

    async def work(platform: PlatformContext) -> str:
        async with platform.db.session() as session:
            return await templates.export_yaml(session, name)

    text = _run(ctx, work)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"templates written to {output}")


def import_templates(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
) -> None:
    """Import templates from YAML: new ones created, changed ones get a new version."""
    from platform_deployments.service import templates

    text = path.read_text(encoding="utf-8")

    async def work(platform: PlatformContext) -> Any:
        async with platform.db.session() as session:
            return await templates.import_yaml(session, text)

    result = _run(ctx, work)
    typer.echo(
        f"created {len(result.created)}, updated {len(result.updated)}, "
        f"unchanged {len(result.unchanged)}"
    )


def reconcile(ctx: typer.Context) -> None:
    """Apply pending changes, then compare every app with its cluster and fix drift."""
    from platform_deployments.runtime import env_of
    from platform_deployments.service import sync

    async def work(platform: PlatformContext) -> tuple[dict[str, int], dict[str, int]]:
        env = env_of(platform)
        applied = await sync.apply_pending(platform.db, env)
        return applied, await sync.reconcile(platform.db, env)

    applied, checked = _run(ctx, work)
    typer.echo("apply: " + ", ".join(f"{k}={v}" for k, v in sorted(applied.items())))
    typer.echo("reconcile: " + ", ".join(f"{k}={v}" for k, v in sorted(checked.items())))


def provision_mongo(
    ctx: typer.Context, user: Annotated[str, typer.Argument(help="User id or username.")]
) -> None:
    """Provision a user's MongoDB database and user (prints the database name)."""
    from sqlalchemy import select

    from platform_core import NotFound, User
    from platform_deployments.runtime import env_of
    from platform_deployments.service import mongo

    async def work(platform: PlatformContext) -> tuple[str, bool]:
        async with platform.db.session() as session:
            stmt = select(User.id).where(User.username == user)
            user_id = int(user) if user.isdigit() else await session.scalar(stmt)
            if user_id is None:
                raise NotFound(f"user {user!r} does not exist")
            row, created = await mongo.provision(session, env_of(platform), user_id)
            return row.database, created

    database, created = _run(ctx, work)
    typer.echo(f"database {database} {'provisioned' if created else 'already provisioned'}")


def register(cli: typer.Typer) -> None:
    """Mount the commands on ``platformctl deployments``."""
    apps_cli.command("list")(list_apps)
    apps_cli.command("status")(app_status)
    apps_cli.command("logs")(app_logs)
    apps_cli.command("rollback")(app_rollback)
    templates_cli.command("export")(export_templates)
    templates_cli.command("import")(import_templates)
    mongo_cli.command("provision")(provision_mongo)
    cli.add_typer(apps_cli, name="apps")
    cli.add_typer(templates_cli, name="templates")
    cli.add_typer(mongo_cli, name="mongo")
    cli.command("reconcile")(reconcile)
