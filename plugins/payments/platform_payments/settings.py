"""Settings of the payments plugin: the ``[plugins.payments]`` table of ``plugins.toml``.

PayPal's credentials may also come from the environment (``PLATFORM_PAYMENTS_PAYPAL_CLIENT_ID``,
``PLATFORM_PAYMENTS_PAYPAL_CLIENT_SECRET``, ``PLATFORM_PAYMENTS_PAYPAL_WEBHOOK_ID``), which
keeps secrets out of the file. They are ``SecretStr``: never shown, returned or logged.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

PAYPAL_BASE_URLS = {
    "sandbox": "https://api-m.sandbox.paypal.com",
    "live": "https://api-m.paypal.com",
}
PAYPAL_CERT_PREFIXES = (
    "https://api.paypal.com/",
    "https://api-m.paypal.com/",
    "https://api.sandbox.paypal.com/",
    "https://api-m.sandbox.paypal.com/",
)
ENV_PREFIX = "PLATFORM_PAYMENTS_PAYPAL_"


class PayPalSettings(BaseModel):
    """``[plugins.payments.paypal]``: credentials, environment and webhook verification."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    mode: Literal["sandbox", "live"] = "sandbox"
    base_url: str | None = Field(
        default=None, description="Override the API base URL (tests: a fake on loopback)."
    )
    webhook_id: str | None = Field(default=None, max_length=64)
    webhook_verification: Literal["local", "api"] = "local"
    cert_url_prefixes: tuple[str, ...] = Field(
        default=PAYPAL_CERT_PREFIXES,
        description="Certificates for local verification are fetched only from these URLs.",
    )
    return_url: str = "https://example.invalid/payments/return"
    cancel_url: str = "https://example.invalid/payments/cancel"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    def credential(self, name: str) -> str | None:
        """``client_id``, ``client_secret`` or ``webhook_id``: the setting, else the environment."""
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return value or os.environ.get(ENV_PREFIX + name.upper()) or None

    @property
    def api_base(self) -> str:
        """The API base URL: the override, else sandbox or live."""
        return (self.base_url or PAYPAL_BASE_URLS[self.mode]).rstrip("/")


class PaymentsSettings(BaseModel):
    """``[plugins.payments]``: expiry, limits and the built-in providers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expire_unapproved_after_minutes: int = Field(default=180, ge=1, le=30 * 24 * 60)
    manual_expire_after_days: int = Field(default=30, ge=1, le=365)
    max_items: int = Field(default=100, ge=1, le=1000)
    reconcile_every_seconds: int = Field(default=300, ge=10, le=86400)
    ledger_check_every_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    capture_retries: int = Field(default=5, ge=0, le=100)
    capture_approved_after_minutes: int = Field(default=10, ge=1, le=7 * 24 * 60)
    paypal: PayPalSettings = PayPalSettings()
