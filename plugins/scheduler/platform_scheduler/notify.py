"""Notification rules: who hears about which ``scheduler.booking.*`` event."""

from __future__ import annotations

from typing import Any

from platform_core import NotificationRule, users_with_role


async def _owner(event: Any) -> list[int]:
    return [int(event.payload["owner_id"])]


async def _approvers_if_pending(event: Any, session: Any) -> list[int]:
    if event.payload.get("status") != "pending":
        return []
    return await users_with_role(session, "admin", "operator")


async def _owner_if_approved(event: Any) -> list[int]:
    return [int(event.payload["owner_id"])] if event.payload.get("status") == "approved" else []


def rules() -> list[NotificationRule]:
    """Approvers: new pending bookings. Owners: every decision and status change."""
    b = "scheduler.booking."
    return [
        NotificationRule(
            b + "created", _approvers_if_pending, title="Booking {booking_id} awaits approval"
        ),
        NotificationRule(b + "created", _owner_if_approved, title="Booking {booking_id} approved"),
        NotificationRule(b + "approved", _owner, title="Booking {booking_id} approved"),
        NotificationRule(b + "rejected", _owner, title="Booking {booking_id} rejected"),
        NotificationRule(b + "cancelled", _owner, title="Booking {booking_id} cancelled"),
        NotificationRule(b + "started", _owner, title="Booking {booking_id} started"),
        NotificationRule(b + "ended", _owner, title="Booking {booking_id} ended"),
        NotificationRule(b + "expired", _owner, title="Booking {booking_id} expired unapproved"),
        NotificationRule(b + "reminder", _owner, title="Booking {booking_id} starts at {start}"),
    ]
