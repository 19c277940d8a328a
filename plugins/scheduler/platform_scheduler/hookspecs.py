"""Extension points the scheduler offers to other plugins (hooks ``scheduler_*``)."""

from __future__ import annotations

from typing import Any

from platform_core import hookspec


@hookspec
def scheduler_power_drivers() -> list[Any]:
    """Return power drivers: objects with a ``name`` and ``on``, ``off``, ``cycle``, ``state``.

    Each of the four is ``async def method(target)`` where ``target`` is a
    :class:`platform_scheduler.power.PowerTarget` (address, outlet, resolved credentials,
    settings); ``state`` returns ``"on"``, ``"off"`` or another short word. A driver
    raises :class:`platform_scheduler.power.PowerError` when the device refuses or is
    unreachable; any other exception is logged with the plugin's name and answered like a
    ``PowerError`` (502). Called for every implementation through
    ``ctx.plugins.call_extension`` in pluggy's order; when two plugins offer one name, the
    first called keeps it (mark an implementation ``tryfirst`` to replace a built-in driver).
    The scheduler itself contributes ``redfish`` and ``snmp``.
    """
