"""Pools: a spot capacity pool is a region, an availability zone and an instance type."""

from __future__ import annotations

from sqlalchemy import exists, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import insert_ignoring
from platform_pricing.models import Instance, Pool, PricePoint

PoolKey = tuple[str, str, str]
"""``(region, zone, instance_type)``."""


async def pool_ids(session: AsyncSession, keys: set[PoolKey]) -> dict[PoolKey, int]:
    """Ids of the pools with these keys, creating missing ones (safe under concurrency)."""
    if not keys:
        return {}
    found = await _lookup(session, keys)
    missing = keys - found.keys()
    if missing:
        rows = [{"region": r, "zone": z, "instance_type": t} for r, z, t in sorted(missing)]
        await session.execute(insert_ignoring(session, Pool).values(rows))
        found |= await _lookup(session, missing)
    return found


async def pool_id(session: AsyncSession, region: str, zone: str, instance_type: str) -> int:
    """The id of one pool, created when new."""
    key = (region, zone, instance_type)
    return (await pool_ids(session, {key}))[key]


async def known_to(session: AsyncSession, client_id: int, pool_id: int) -> bool:
    """Whether the client reported a price for the pool or runs an instance in it.

    Pool ids are global; a client may only name the pools it knows, so that pool ids tell
    nothing about other clients (an unknown pool is refused like a missing one).
    """
    priced = exists().where(PricePoint.client_id == client_id, PricePoint.pool_id == pool_id)
    running = exists().where(Instance.client_id == client_id, Instance.pool_id == pool_id)
    return bool(await session.scalar(select(priced | running)))


async def pools_by_id(session: AsyncSession, ids: set[int]) -> dict[int, Pool]:
    """Pools by id."""
    if not ids:
        return {}
    rows = await session.scalars(select(Pool).where(Pool.id.in_(ids)))
    return {p.id: p for p in rows}


async def _lookup(session: AsyncSession, keys: set[PoolKey]) -> dict[PoolKey, int]:
    found: dict[PoolKey, int] = {}
    ordered = sorted(keys)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        rows = await session.execute(
            select(Pool.id, Pool.region, Pool.zone, Pool.instance_type).where(
                tuple_(Pool.region, Pool.zone, Pool.instance_type).in_(chunk)
            )
        )
        for row in rows:
            found[(row.region, row.zone, row.instance_type)] = row.id
    return found
