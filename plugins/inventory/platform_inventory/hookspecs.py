"""Extension points the inventory plugin offers to other plugins (hooks ``inventory_*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from platform_core import hookspec

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from platform_core import PlatformContext


@hookspec
def inventory_device_delete_veto(
    device: dict[str, Any], action: str, ctx: PlatformContext | None, session: AsyncSession
) -> str | None:
    """Return a one-line reason to refuse deleting or retiring a device, or None to allow it.

    :param device: the device as the API shows it (``id``, ``name``, ``status``, ...).
    :param action: ``"delete"`` or ``"retire"`` (a change of status to ``retired``).
    :param ctx: the running platform.
    :param session: the inventory's own session, in the transaction that deletes or retires
        the device (the device row is locked): read through it, so that the check sees what
        this transaction sees and a booking committed meanwhile cannot slip through. Do not
        commit, roll back or close it.

    Called for every implementation, through ``ctx.plugins.vetoes`` (pluggy's order; an
    implementation may be a coroutine function, awaited before the next one runs). Any
    reason refuses the change with 409 problem+json naming the plugin and its reason; an
    implementation that raises refuses too (fail-closed) and is logged with its plugin's
    name. Nothing is written when the change is refused.
    """
