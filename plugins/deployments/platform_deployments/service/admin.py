"""Admin actions across users: suspend a user's apps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Principal
from platform_deployments.models import App
from platform_deployments.service import apps


async def suspend_user(
    session: AsyncSession, caller: Principal, user_id: int
) -> list[tuple[App, dict[str, Any]]]:
    """Stop every app of the user that is not being deleted; the stopped apps."""
    ids = list(
        (
            await session.scalars(
                select(App.id)
                .where(App.user_id == user_id, App.state != "deleting")
                .order_by(App.id)
            )
        ).all()
    )
    result = []
    for app_id in ids:
        app = await session.get(App, app_id)
        if app is not None and not app.stopped:
            result.append(await apps.stop(session, caller, app_id))
    return result
