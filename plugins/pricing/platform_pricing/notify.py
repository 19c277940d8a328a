"""Notification rules: a client's robot user and the admins hear about ``pricing.*`` events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from platform_core import NotificationRule, users_with_role
from platform_pricing.models import Client


async def _client_and_admins(event: Any, session: Any) -> list[int]:
    user_id = await session.scalar(
        select(Client.user_id).where(Client.id == int(event.payload["client_id"]))
    )
    admins = await users_with_role(session, "admin")
    return sorted({*admins, *([user_id] if user_id is not None else [])})


def rules() -> list[NotificationRule]:
    """Agent offline, switch issued, termination notice and replica promoted."""
    return [
        NotificationRule(
            "pricing.agent.offline", _client_and_admins, title="Agent {agent} is offline"
        ),
        NotificationRule(
            "pricing.switch.issued",
            _client_and_admins,
            title="Switch issued to agent {agent_id} (command {command_id})",
            body="{reason}",
        ),
        NotificationRule(
            "pricing.termination.notice",
            _client_and_admins,
            title="Termination notice for instance {cloud_id}",
        ),
        NotificationRule(
            "pricing.replica.promoted",
            _client_and_admins,
            title="Replica {replica_id} promoted for agent {agent_id}",
        ),
    ]
