"""``platformctl inventory ...``: import and export devices without going through HTTP."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

FORMATS = {".csv": "text/csv", ".json": "application/json"}


def import_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check only; write nothing.")] = False,
    format: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: from the suffix)")
    ] = None,
) -> None:
    """Import devices from a CSV or JSON file, all or nothing."""
    from rich.console import Console

    from platform_core import PlatformError, run_command
    from platform_inventory import transfer
    from platform_inventory.service import Audit
    from platform_inventory.settings import InventorySettings

    platform = ctx.obj
    settings = platform.settings_for("inventory", InventorySettings)
    console = Console(stderr=True)
    size = file.stat().st_size
    if size > settings.max_import_bytes:
        console.print(
            f"[red]error:[/] {file} is {size} bytes; the limit is {settings.max_import_bytes} "
            "([plugins.inventory] max_import_bytes)"
        )
        raise typer.Exit(1)
    media = FORMATS.get(f".{format}" if format else file.suffix.lower(), "text/csv")
    request_id = f"cli-{uuid.uuid4().hex}"

    async def work() -> Any:
        from rich.progress import Progress

        content = file.read_bytes()
        with Progress(console=console, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("importing", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            async with platform.db.session() as session:
                return await transfer.import_devices(
                    session,
                    content,
                    media,
                    audit=Audit("cli", request_id),
                    dry_run=dry_run,
                    max_bytes=settings.max_import_bytes,
                    progress=progress,
                )

    try:
        result = run_command(platform, work())
    except PlatformError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        for issue in exc.extra.get("errors", [])[:50]:
            console.print(f"  line {issue.get('line')}: {issue['field']}: {issue['message']}")
        raise typer.Exit(1) from exc
    verb = "would create" if dry_run else "created"
    typer.echo(
        f"{verb} {result.created}, updated {result.updated}, connections {result.connections} "
        f"(request id {request_id})"
    )


def export_file(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default stdout)")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    ids: Annotated[bool, typer.Option("--ids", help="Include device ids.")] = False,
) -> None:
    """Export every device as CSV or JSON."""
    from platform_core import run_command
    from platform_inventory import transfer

    if format not in ("csv", "json"):
        raise typer.BadParameter("csv or json", param_hint="--format")
    platform = ctx.obj

    async def work() -> None:
        out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            async for chunk in transfer.export_devices(
                platform.db.session, format, include_ids=ids
            ):
                out.write(chunk)
        finally:
            if output:
                out.close()

    run_command(platform, work())


def register(cli: typer.Typer) -> None:
    """Add the plugin's commands to its ``platformctl inventory`` group."""
    cli.command("import")(import_file)
    cli.command("export")(export_file)
