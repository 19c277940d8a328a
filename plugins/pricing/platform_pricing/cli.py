"""``platformctl pricing clients|agents|import-prices|savings``.

Commands act as the platform's pricing admin directly on the database (no HTTP).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from platform_core import PlatformContext

CLI_ACTOR = "cli"
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
BATCH = 5000


def _admin() -> Any:
    from platform_pricing.tenancy import Tenant

    return Tenant("admin", CLI_ACTOR, client_admin=True)


def _run(ctx: typer.Context, work: Any) -> Any:
    from rich.console import Console

    from platform_core import PlatformError, run_command

    try:
        return run_command(ctx.obj, work(ctx.obj))
    except PlatformError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(1) from None


def create_client(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Client name: lowercase letters, digits, '-'.")],
    display_name: Annotated[str, typer.Option("--display-name")] = "",
) -> None:
    """Create a client (a tenant)."""
    from rich.console import Console

    from platform_pricing.schemas.clients import ClientIn
    from platform_pricing.service import clients

    try:
        checked = ClientIn(name=name, display_name=display_name)
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/] invalid client: {exc}")
        raise typer.Exit(2) from None

    async def work(platform: PlatformContext) -> int:
        async with platform.db.session() as session:
            client = await clients.create_client(
                session, name=checked.name, display_name=checked.display_name
            )
            return client.id

    client_id = _run(ctx, work)
    Console().print(f"client {name} created (id {client_id})")


def list_clients(ctx: typer.Context) -> None:
    """List clients."""
    from rich.console import Console
    from rich.table import Table

    from platform_pricing.service import clients

    async def work(platform: PlatformContext) -> list[Any]:
        async with platform.db.session() as session:
            rows, _ = await clients.list_clients(session, _admin())  # no limit: every client
            return rows

    table = Table("id", "name", "display name", "active", "engine", "created")
    for c in _run(ctx, work):
        table.add_row(
            str(c.id),
            c.name,
            c.display_name,
            "yes" if c.is_active else "no",
            c.engine or "(platform)",
            c.created_at.isoformat(),
        )
    Console().print(table)


def client_token(
    ctx: typer.Context,
    client: Annotated[str, typer.Argument(help="Client name or id.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="Also scope pricing:client_admin (force switches).")
    ] = False,
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "cli",
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="e.g. 30d, 12h; default: [plugins.pricing] client_token_days (365).",
        ),
    ] = None,
) -> None:
    """Create a client token; the secret is printed once."""
    from rich.console import Console

    from platform_pricing.service import clients, imports
    from platform_pricing.settings import PricingSettings

    async def work(platform: PlatformContext) -> str:
        async with platform.db.session() as session:
            found = await imports.find_client(session, client)
            _, secret = await clients.create_client_token(
                session,
                found.id,
                name=name,
                admin=admin,
                expires_in=expires_in,
                known_scopes=frozenset(platform.permissions),
                role_scopes=platform.scopes_by_role,
                default_days=platform.settings_for("pricing", PricingSettings).client_token_days,
            )
            return secret

    secret = _run(ctx, work)
    Console(stderr=True).print("client token (shown once):")
    typer.echo(secret)


def list_agents(
    ctx: typer.Context,
    offline: Annotated[bool, typer.Option("--offline", help="Only offline agents.")] = False,
    client: Annotated[str | None, typer.Option("--client", help="Client name or id.")] = None,
) -> None:
    """List agents with their status and last heartbeat."""
    from rich.console import Console
    from rich.table import Table

    from platform_pricing.service import agents, imports

    async def work(platform: PlatformContext) -> list[Any]:
        async with platform.db.session() as session:
            status = "offline" if offline else None
            rows, _ = await agents.list_agents(session, _admin(), status)  # no limit: all
            if client is not None:
                found = await imports.find_client(session, client)
                rows = [a for a in rows if a.client_id == found.id]
            return rows

    table = Table("id", "client", "name", "status", "version", "last heartbeat")
    for a in _run(ctx, work):
        table.add_row(
            str(a.id),
            str(a.client_id),
            a.name,
            a.status,
            a.version,
            a.last_heartbeat_at.isoformat(),
        )
    Console().print(table)


def import_prices(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: "
            + ", ".join(
                ("region", "zone", "instance_type", "spot_price", "on_demand_price", "observed_at")
            )
        ),
    ],
    client: Annotated[str, typer.Option("--client", help="Client name or id.")],
) -> None:
    """Import price points from CSV for a client: all rows or none (one transaction)."""
    from rich.console import Console
    from rich.progress import Progress

    from platform_core import PlatformError
    from platform_pricing.service import imports

    if not file.is_file():
        Console(stderr=True).print(f"[red]error:[/] no such file: {file}")
        raise typer.Exit(2)
    try:
        with file.open(newline="", encoding="utf-8") as stream:
            points = list(imports.parse_csv(stream))
    except PlatformError as exc:
        Console(stderr=True).print(f"[red]error:[/] {file}: {exc.detail}")
        raise typer.Exit(1) from None

    async def work(platform: PlatformContext) -> int:
        done = 0
        async with platform.db.session() as session:
            found = await imports.find_client(session, client)
            with Progress(console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("importing", total=len(points))
                for i in range(0, len(points), BATCH):
                    done += await imports.import_points(session, found.id, points[i : i + BATCH])
                    progress.update(task, completed=done)
        return done

    count = _run(ctx, work)
    Console().print(f"imported {count} price points for client {client}")


def savings(
    ctx: typer.Context,
    client: Annotated[str, typer.Option("--client", help="Client name or id.")],
    month: Annotated[
        str | None, typer.Option("--month", help="YYYY-MM; default: the current month.")
    ] = None,
) -> None:
    """A client's savings for a month, per instance and in total."""
    from rich.console import Console
    from rich.table import Table

    from platform_pricing.service import imports
    from platform_pricing.service import savings as savings_service

    if month is not None and not MONTH_RE.match(month):
        Console(stderr=True).print(f"[red]error:[/] --month must be YYYY-MM, got {month!r}")
        raise typer.Exit(2)

    async def work(platform: PlatformContext) -> dict[str, Any]:
        async with platform.db.session() as session:
            found = await imports.find_client(session, client)
            return await savings_service.savings_report(
                session, _admin(), month=month, instance_id=None, client_id=found.id
            )

    report = _run(ctx, work)
    table = Table("instance", "hours", "on-demand cost", "actual cost", "savings")
    for row in report.get("instances", []):
        table.add_row(
            str(row["instance_id"]),
            f"{row['hours']:.2f}",
            f"{row['on_demand_cost']:.4f}",
            f"{row['actual_cost']:.4f}",
            f"{row['savings']:.4f}",
        )
    total = report.get("totals", {})
    table.add_row(
        "total",
        f"{total.get('hours', 0):.2f}",
        f"{total.get('on_demand_cost', 0):.4f}",
        f"{total.get('actual_cost', 0):.4f}",
        f"{total.get('savings', 0):.4f}",
    )
    Console().print(f"savings of client {client} in {report.get('month')}")
    Console().print(table)


def register(cli: typer.Typer) -> None:
    """Add the pricing commands to ``platformctl pricing``."""
    clients = typer.Typer(
        help="Create and list clients, issue client tokens.", no_args_is_help=True
    )
    clients.command("create")(create_client)
    clients.command("list")(list_clients)
    clients.command("token")(client_token)
    cli.add_typer(clients, name="clients")
    agents = typer.Typer(help="List agents.", no_args_is_help=True)
    agents.command("list")(list_agents)
    cli.add_typer(agents, name="agents")
    cli.command("import-prices")(import_prices)
    cli.command("savings")(savings)
