"""Extension points the example plugin offers to other plugins (hooks ``example_*``)."""

from __future__ import annotations

from platform_core import hookspec


@hookspec
def example_validate_note(title: str, body: str, owner_id: int) -> str | None:
    """Return a one-line reason to refuse a note being created or changed, or None to accept.

    Called for every implementation; a note is refused when any returns a reason. The
    client receives 422 problem+json listing every reason.
    """
