"""Extension points the inventory plugin offers to other plugins (hooks ``inventory_*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from platform_core import hookspec

if TYPE_CHECKING:
    from platform_core import PlatformContext


@hookspec
def inventory_device_delete_veto(
    device: dict[str, Any], action: str, ctx: PlatformContext | None
) -> str | None:
    """Return a one-line reason to refuse deleting or retiring a device, or None to allow it.

    :param device: the device as the API shows it (``id``, ``name``, ``status``, ...).
    :param action: ``"delete"`` or ``"retire"`` (a change of status to ``retired``).
    :param ctx: the running platform.

    Called for every implementation; any reason refuses the change with 409 problem+json
    naming the plugin and its reason. Nothing is written. An implementation may be a
    coroutine function (it is awaited); it runs inside the inventory's request, so keep it
    to a quick read (``ctx.db.session()`` sees committed data).
    """
