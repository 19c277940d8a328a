"""``platformctl openapi``: the API's OpenAPI document, built without touching the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from platformctl.output import note, say

app = typer.Typer()


@app.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Print (or write) the OpenAPI JSON of the enabled plugins' API."""
    from platform_core.app import create_app
    from platformctl.runtime import boot_platform

    document = json.dumps(create_app(boot_platform()).openapi(), indent=2) + "\n"
    if output is None:
        say(document.rstrip("\n"))
        return
    output.write_text(document, encoding="utf-8")
    note(f"wrote {output}")
