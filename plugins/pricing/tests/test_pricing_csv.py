"""Price CSV files are read with the core reader: spreadsheet-escaped cells, quoted line
breaks and malformed files; a file written by the core writer imports the same values."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from platform_pricing.models import Pool, PricePoint
from platform_pricing.service import imports
from sqlalchemy import select

from platform_core import CsvWriter, ValidationFailed

HEADER = "region,zone,instance_type,spot_price,on_demand_price,observed_at\r\n"


def test_cells_escaped_by_a_spreadsheet_are_read_without_the_quote() -> None:
    text = HEADER + "'us-east-1,us-east-1a,m5.large,'0.5,1,'2026-01-01T00:00:00Z\r\n"

    [point] = list(imports.parse_csv(io.StringIO(text, newline="")))

    assert (point.region, point.spot_price, point.on_demand_price) == ("us-east-1", 0.5, 1.0)
    assert point.observed_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_formula_in_a_cell_is_refused_naming_line_and_column() -> None:
    text = HEADER + "us-east-1,us-east-1a,m5.large,=0.5+0,1,2026-01-01T00:00:00Z\r\n"

    with pytest.raises(ValidationFailed) as err:
        list(imports.parse_csv(io.StringIO(text, newline="")))

    assert err.value.extra["errors"][0]["field"] == "line 2: spot_price"


def test_an_unclosed_quote_is_refused_naming_the_line() -> None:
    text = HEADER + 'us-east-1,"us-east-1a,m5.large,0.5,1,2026-01-01T00:00:00Z\r\n'

    with pytest.raises(ValidationFailed) as err:
        list(imports.parse_csv(io.StringIO(text, newline="")))

    assert err.value.extra["errors"][0]["field"] == "line 2: file"


def test_a_record_longer_than_the_header_is_refused() -> None:
    text = HEADER + "us-east-1,us-east-1a,m5.large,0.5,1,2026-01-01T00:00:00Z,extra\r\n"

    with pytest.raises(ValidationFailed, match="more cells than the header"):
        list(imports.parse_csv(io.StringIO(text, newline="")))


async def test_a_file_written_by_the_core_writer_imports_the_same_values(
    platform: Any, world: Any
) -> None:
    cid, _ = await world.client()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        ("us-east-1", "us-east-1a", "m5.large", 0.1 + k / 7, 0.96, start + timedelta(seconds=k))
        for k in range(20)
    ]
    buffer = io.StringIO(newline="")
    writer = CsvWriter(buffer)
    writer.writerow(imports.COLUMNS)
    writer.writerows([*p[:5], p[5].isoformat()] for p in points)
    buffer.seek(0)

    parsed = list(imports.parse_csv(buffer))
    async with platform.ctx.db.session() as session:
        assert await imports.import_points(session, cid, parsed) == len(points)
    async with platform.ctx.db.session() as session:
        stored = await session.execute(
            select(
                Pool.region,
                Pool.zone,
                Pool.instance_type,
                PricePoint.spot_price,
                PricePoint.on_demand_price,
                PricePoint.observed_at,
            )
            .join(Pool, Pool.id == PricePoint.pool_id)
            .where(PricePoint.client_id == cid)
            .order_by(PricePoint.observed_at)
        )
        assert [tuple(r) for r in stored] == points
