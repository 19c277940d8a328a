"""Settings of the scheduler plugin: the ``[plugins.scheduler]`` table of ``plugins.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Credential(BaseModel):
    """A named secret for a power driver: user and password (Redfish) or a community (SNMP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = Field(None, max_length=200)
    password: SecretStr | None = None
    community: SecretStr | None = None


class SchedulerSettings(BaseModel):
    """``[plugins.scheduler]``: defaults when no policy matches, jobs, power drivers.

    ``credentials`` maps a reference name (what a device's power config stores) to a
    :class:`Credential`; a name missing here is looked up in the environment as
    ``PLATFORM_SCHEDULER_CREDENTIAL_<NAME>`` (``user:password``, or a bare SNMP community).

    Reading a device's power state (``GET .../power``) is bounded by ``power_read_timeout``
    seconds (no Redfish retries) and limited to ``power_reads_per_user`` reads per user per
    ``power_read_window_seconds`` (per server process); switching uses ``power_timeout``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_auto_approve: bool = True
    max_occurrences: int = Field(366, gt=0, le=5000)
    max_devices_per_booking: int = Field(100, gt=0, le=10_000)
    connected_depth: int = Field(1, gt=0, le=20)
    reminder_minutes: int = Field(15, ge=0, le=7 * 24 * 60)
    job_interval_seconds: int = Field(60, gt=0, le=3600)
    power_timeout: float = Field(30.0, gt=0, le=600)
    power_read_timeout: float = Field(5.0, gt=0, le=60)
    power_reads_per_user: int = Field(10, gt=0, le=10_000)
    power_read_window_seconds: int = Field(60, gt=0, le=3600)
    redfish_verify_tls: bool = True
    snmp_outlet_oid: str = Field("1.3.6.1.4.1.318.1.1.4.4.2.1.3", pattern=r"^\d+(\.\d+)+$")
    snmp_on_value: int = 1
    snmp_off_value: int = 2
    snmp_cycle_value: int = 3
    credentials: dict[str, Credential] = Field(default_factory=dict)
