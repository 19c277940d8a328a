"""Bulk import of price points from CSV (``platformctl pricing import-prices``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import CsvFormatError, NotFound, ValidationFailed, invalid, read_csv
from platform_pricing.models import Client, PricePoint
from platform_pricing.schemas.reports import PricePointIn
from platform_pricing.service.pools import pool_ids

COLUMNS = ("region", "zone", "instance_type", "spot_price", "on_demand_price", "observed_at")
"""The CSV header ``import-prices`` expects (any extra column is ignored)."""


@dataclass(frozen=True)
class CsvPoint:
    """One parsed CSV row."""

    region: str
    zone: str
    instance_type: str
    spot_price: float
    on_demand_price: float
    observed_at: datetime


def _bad(line: int, column: str, message: str) -> ValidationFailed:
    return invalid(f"line {line}: {column}", message)


def parse_csv(stream: TextIO) -> Iterator[CsvPoint]:
    """Rows of a price CSV, each checked like a point of an agent's pricing report;
    ``ValidationFailed`` names the line and the column.

    ``observed_at`` is ISO 8601 with a UTC offset (``2026-01-01T00:00:00Z``). Read with
    :func:`platform_core.read_csv`: a cell a spreadsheet export escaped with a
    leading ``'`` is read without it.
    """
    try:
        reader = read_csv(stream)
        missing = [c for c in COLUMNS if c not in reader.header]
        if missing:
            raise _bad(1, missing[0], f"missing column; the header must hold {', '.join(COLUMNS)}")
        width = len(reader.header)
        for line, row in reader:
            absent = [c for c in COLUMNS if c in reader.missing(row)]
            if absent:  # a short row: blame its missing cells, not what their emptiness fails
                raise _bad(
                    line,
                    absent[0],
                    f"missing cell: the row has {len(row)} of the header's {width} cells "
                    f"(no {', '.join(absent)})",
                )
            yield _point(line, row)
    except CsvFormatError as exc:
        raise _bad(exc.line, "file", exc.message) from None


def _point(line: int, row: dict[str, str]) -> CsvPoint:
    values = {c: row.get(c, "") for c in COLUMNS}
    try:
        point = PricePointIn.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        column = str(error["loc"][0]) if error["loc"] else "row"
        raise _bad(line, column, f"{error['msg']} (got {values.get(column, '')!r})") from None
    return CsvPoint(
        point.region,
        point.zone,
        point.instance_type,
        point.spot_price,
        point.on_demand_price,
        point.observed_at,
    )


async def find_client(session: AsyncSession, name_or_id: str) -> Client:
    """A client by name, or by id when given digits."""
    query = select(Client)
    if name_or_id.isdigit():
        query = query.where(Client.id == int(name_or_id))
    else:
        query = query.where(Client.name == name_or_id)
    client = await session.scalar(query)
    if client is None:
        raise NotFound(f"client {name_or_id!r} not found")
    return client


async def import_points(session: AsyncSession, client_id: int, points: Iterable[CsvPoint]) -> int:
    """Insert a batch of points for a client (pools created as needed); how many."""
    batch = list(points)
    if not batch:
        return 0
    ids = await pool_ids(session, {(p.region, p.zone, p.instance_type) for p in batch})
    rows: list[dict[str, Any]] = [
        {
            "client_id": client_id,
            "pool_id": ids[(p.region, p.zone, p.instance_type)],
            "observed_at": p.observed_at,
            "spot_price": p.spot_price,
            "on_demand_price": p.on_demand_price,
        }
        for p in batch
    ]
    conn = await session.connection()
    await conn.execute(insert(PricePoint), rows)
    return len(rows)
