"""Settings of the pricing plugin: the ``[plugins.pricing]`` table of ``plugins.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PolicySettings(BaseModel):
    """Anti-flapping and safety rules of the decision engines; each client may override any.

    A client's overrides live in its ``policy`` (``PATCH /api/pricing/clients/{id}``); a key
    it leaves out takes the value here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_saving_percent: float = Field(default=10.0, ge=0, le=100)
    min_saving_per_hour: float = Field(default=0.005, ge=0)
    min_seconds_between_switches: int = Field(default=3600, ge=0, le=30 * 86400)
    interruption_cooldown_seconds: int = Field(default=6 * 3600, ge=0, le=30 * 86400)
    allow_on_demand: bool = True
    max_price_ratio: float = Field(default=1.0, gt=0, le=10)


class PricingSettings(BaseModel):
    """``[plugins.pricing]``: agent liveness, report limits, engines, history and retention."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_offline_after_seconds: int = Field(default=600, ge=30, le=7 * 86400)
    client_token_days: int = Field(
        default=365, ge=0, le=3660, description="lifetime of a client token given none; 0: never"
    )
    agent_token_days: int = Field(
        default=365, ge=0, le=3660, description="lifetime of an agent's token; 0: never expires"
    )
    max_points_per_report: int = Field(default=5_000, gt=0, le=1_000_000)
    default_engine: str = Field(default="rules", min_length=1, max_length=64)
    engine_budget_ms: float = Field(default=10.0, gt=0, le=10_000)
    recent_window_seconds: int = Field(default=3600, ge=60, le=30 * 86400)
    interruption_rate_days: int = Field(default=7, ge=1, le=365)
    history_max_points: int = Field(default=5000, ge=1, le=100_000)
    emergency_promote: bool = True
    raw_retention_days: int = Field(default=400, ge=1, le=3650)
    hourly_retention_days: int = Field(default=1100, ge=1, le=36500)
    decisions_retention_days: int = Field(default=90, ge=1, le=3650)
    reports_retention_days: int = Field(default=30, ge=1, le=3650)
    policy: PolicySettings = PolicySettings()
    # ML models: the model the ``onnx`` engine serves, and the largest artifact accepted
    # (``[core] max_body_bytes`` caps every request body too: raise both for big models).
    onnx_model: str = Field(
        default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )
    ml_model_max_bytes: int = Field(default=1_000_000, ge=1024, le=512 * 1024 * 1024)
