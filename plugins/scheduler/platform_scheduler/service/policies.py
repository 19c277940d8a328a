"""Policies: the rules a booking of a device follows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, NotFound, invalid
from platform_scheduler.models import Policy

# -- policies ---------------------------------------------------------------------------


async def list_policies(session: AsyncSession) -> list[Policy]:
    """Every policy, by id."""
    return list((await session.scalars(select(Policy).order_by(Policy.id))).all())


async def get_policy(session: AsyncSession, policy_id: int) -> Policy:
    """One policy, or ``NotFound``."""
    policy = await session.get(Policy, policy_id)
    if policy is None:
        raise NotFound(f"policy {policy_id} not found")
    return policy


def _check_target(values: dict[str, Any]) -> None:
    if (values.get("device_type_id") is None) == (values.get("tag") is None):
        raise invalid("device_type_id", "give exactly one of device_type_id and tag")


async def _flush_policy(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"a policy named {name!r} already exists",
            errors=[{"field": "name", "message": "already exists"}],
        ) from None


async def create_policy(session: AsyncSession, data: dict[str, Any]) -> Policy:
    """Create a policy for one device type or one tag; 409 on a duplicate name."""
    _check_target(data)
    existing = await session.scalar(select(Policy.id).where(Policy.name == data["name"]))
    if existing is not None:
        raise Conflict(
            f"a policy named {data['name']!r} already exists",
            errors=[{"field": "name", "message": "already exists"}],
        )
    policy = Policy(**data)
    session.add(policy)
    await _flush_policy(session, data["name"])
    return policy


async def update_policy(session: AsyncSession, policy_id: int, changes: dict[str, Any]) -> Policy:
    """Change a policy (only the keys present; ``None`` clears a limit)."""
    policy = await get_policy(session, policy_id)
    for key in ("name", "auto_approve"):
        if key in changes and changes[key] is None:
            raise invalid(key, "cannot be null")
    merged = {
        "device_type_id": changes.get("device_type_id", policy.device_type_id),
        "tag": changes.get("tag", policy.tag),
    }
    _check_target(merged)
    if "name" in changes and changes["name"] != policy.name:
        other = await session.scalar(select(Policy.id).where(Policy.name == changes["name"]))
        if other is not None:
            raise Conflict(
                f"a policy named {changes['name']!r} already exists",
                errors=[{"field": "name", "message": "already exists"}],
            )
    for key, value in changes.items():
        setattr(policy, key, value)
    await _flush_policy(session, policy.name)
    return policy


async def delete_policy(session: AsyncSession, policy_id: int) -> None:
    """Delete a policy."""
    policy = await get_policy(session, policy_id)
    await session.delete(policy)
    await session.flush()
