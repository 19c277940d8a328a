"""Business logic of bookings, approvals, policies and availability, one module per area.

No HTTP here. The names other modules use are re-exported here; ``common`` holds what the
areas share and the concurrency rules they follow."""

from __future__ import annotations

from platform_scheduler.service.availability import (
    availability,
    check_query_window,
    free_slots,
    free_windows,
    recommendations,
)
from platform_scheduler.service.bookings import (
    approve_booking,
    cancel_booking,
    create_booking,
    device_ids_of,
    get_booking,
    list_bookings,
    locked_booking,
    occurrences,
    reject_booking,
    release_and_power_off,
    release_booking,
    update_booking,
)
from platform_scheduler.service.common import (
    APPROVERS,
    HORIZON,
    MAX_WINDOW,
    POLICIES,
    SLOTS,
    START_GRACE,
    DeviceInfo,
    Rules,
    booking_device_ids,
    is_approver,
    lock_devices,
)
from platform_scheduler.service.conflicts import (
    check_concurrent,
    conflict_error,
    find_conflicts,
    insert_slots,
    set_slots,
)
from platform_scheduler.service.devices import (
    check_window,
    device_info,
    devices_and_rules,
    inventory_devices,
    lock_owner,
    refuse_gone_or_retired,
    resolve_devices,
)
from platform_scheduler.service.policies import (
    create_policy,
    delete_policy,
    get_policy,
    list_policies,
    update_policy,
)
from platform_scheduler.service.transitions import (
    end_due,
    expire_pending,
    send_reminders,
    start_due,
)
from platform_scheduler.service.veto import (
    future_bookings,
)

__all__ = [
    "APPROVERS",
    "HORIZON",
    "MAX_WINDOW",
    "POLICIES",
    "SLOTS",
    "START_GRACE",
    "DeviceInfo",
    "Rules",
    "approve_booking",
    "availability",
    "booking_device_ids",
    "cancel_booking",
    "check_concurrent",
    "check_query_window",
    "check_window",
    "conflict_error",
    "create_booking",
    "create_policy",
    "delete_policy",
    "device_ids_of",
    "device_info",
    "devices_and_rules",
    "end_due",
    "expire_pending",
    "find_conflicts",
    "free_slots",
    "free_windows",
    "future_bookings",
    "get_booking",
    "get_policy",
    "insert_slots",
    "inventory_devices",
    "is_approver",
    "list_bookings",
    "list_policies",
    "lock_devices",
    "lock_owner",
    "locked_booking",
    "occurrences",
    "recommendations",
    "refuse_gone_or_retired",
    "reject_booking",
    "release_and_power_off",
    "release_booking",
    "resolve_devices",
    "send_reminders",
    "set_slots",
    "start_due",
    "update_booking",
    "update_policy",
]
