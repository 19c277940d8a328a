"""Printing: tables with rich (readable without a TTY too), JSON, and status lines.

Results go to stdout; notes and progress go to stderr, so ``$(platformctl ...)`` captures
only the result. rich is imported on first use, never for ``--help``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer


def say(message: str) -> None:
    """Print a result line to stdout."""
    typer.echo(message)


def note(message: str) -> None:
    """Print a status or hint line to stderr."""
    typer.echo(message, err=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON to stdout (times in ISO 8601, paths as strings)."""
    typer.echo(json.dumps(data, indent=2, default=_json_default))


def cell(value: Any) -> str:
    """How one value reads in a table: ``-`` for None/empty, ``yes``/``no`` for booleans."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="seconds")
    return str(value)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print rows as a table; without a TTY, a plain wide layout that does not wrap."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    tty = sys.stdout.isatty()
    console = Console(
        file=sys.stdout,
        markup=False,
        highlight=False,
        emoji=False,
        width=None if tty else 400,
        soft_wrap=not tty,
    )
    table = Table(title=title, box=box.ROUNDED if tty else box.SIMPLE, show_edge=tty)
    for name in columns:
        table.add_column(name, overflow="fold" if tty else "ignore", no_wrap=not tty)
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console.print(table)


def print_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    """Print rows as a table, or as a JSON list of objects keyed by column name."""
    if as_json:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
    else:
        print_table(columns, rows, title=title)
