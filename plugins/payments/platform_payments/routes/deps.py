"""Route dependencies: the plugin's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from platform_core import get_context
from platform_payments.settings import PaymentsSettings


def current_settings(request: Request) -> PaymentsSettings:
    """``[plugins.payments]`` of the running platform."""
    return get_context(request).settings_for("payments", PaymentsSettings)


Settings = Annotated[PaymentsSettings, Depends(current_settings)]
"""A route parameter type: the payments settings."""
