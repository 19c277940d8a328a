"""SQLAlchemy tables of the pricing plugin, all prefixed ``pricing_``.

Every row that belongs to a tenant carries ``client_id``, and every query of a client's data
filters on it (see :mod:`platform_pricing.tenancy`). User ids refer to the core's users by
value: no foreign keys across plugins. Prices are floats per hour in the client's currency.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

from platform_core import UTCDateTime, plugin_metadata, utcnow

LIFECYCLES = ("spot", "on-demand")

BigId = BigInteger().with_variant(Integer, "sqlite")
"""A 64-bit key on PostgreSQL; SQLite only auto-increments ``INTEGER PRIMARY KEY``."""


class PricingBase(DeclarativeBase):
    """Declarative base bound to the pricing plugin's own metadata."""

    metadata = plugin_metadata()


class Client(PricingBase):
    """A tenant. Its API identity is a core robot user (``user_id``) holding client tokens."""

    __tablename__ = "pricing_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[int] = mapped_column(Integer, unique=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    engine: Mapped[str | None] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Pool(PricingBase):
    """A spot capacity pool: region, availability zone and instance type."""

    __tablename__ = "pricing_pools"
    __table_args__ = (
        UniqueConstraint("region", "zone", "instance_type", name="uq_pricing_pools_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str] = mapped_column(String(64))


class Agent(PricingBase):
    """An agent on a cloud instance; its token belongs to a core robot user (``user_id``)."""

    __tablename__ = "pricing_agents"
    __table_args__ = (
        UniqueConstraint("client_id", "name", name="uq_pricing_agents_name"),
        CheckConstraint("status IN ('online', 'offline')", name="status"),
        Index("ix_pricing_agents_status_heartbeat", "status", "last_heartbeat_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("pricing_clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(50), default="")
    status: Mapped[str] = mapped_column(String(16), default="online")
    replica_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set by its client (toggle-enabled); a disabled agent's reports are refused.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Its settings (report interval, engine override, ...): see schemas/agent_settings.py.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    offline_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Instance(PricingBase):
    """The workload an agent runs: its current cloud instance, pool and lifecycle.

    A switch or a promotion replaces the cloud instance (``cloud_id``) and keeps the row, so
    the history of one workload reads as one instance.
    """

    __tablename__ = "pricing_instances"
    __table_args__ = (
        CheckConstraint("lifecycle IN ('spot', 'on-demand')", name="lifecycle"),
        UniqueConstraint("client_id", "cloud_id", name="uq_pricing_instances_cloud_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("pricing_clients.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("pricing_agents.id", ondelete="CASCADE"), unique=True
    )
    cloud_id: Mapped[str] = mapped_column(String(100))
    pool_id: Mapped[int] = mapped_column(ForeignKey("pricing_pools.id"))
    lifecycle: Mapped[str] = mapped_column(String(16), default="spot")
    state: Mapped[str] = mapped_column(String(16), default="running")
    last_switch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Placement(PricingBase):
    """An interval ``[started_at, ended_at)`` an instance spent in a pool (savings integrate it)."""

    __tablename__ = "pricing_placements"
    __table_args__ = (
        Index("ix_pricing_placements_instance", "instance_id", "started_at"),
        Index("ix_pricing_placements_client", "client_id", "started_at"),
        Index(
            "uq_pricing_placements_open",
            "instance_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("pricing_clients.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("pricing_instances.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("pricing_pools.id"))
    lifecycle: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PricePoint(PricingBase):
    """A spot and on-demand price of a pool observed by one of the client's agents."""

    __tablename__ = "pricing_price_points"
    # ``id`` last: "the latest point" (ties on observed_at: the latest report) is one index
    # step on both dialects.
    __table_args__ = (
        Index("ix_pricing_price_points_pool", "client_id", "pool_id", "observed_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    pool_id: Mapped[int] = mapped_column(Integer)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    spot_price: Mapped[float] = mapped_column(Float)
    on_demand_price: Mapped[float] = mapped_column(Float)


class DirtyHour(PricingBase):
    """An hour of a client's pool that received price points (or lost duplicates) since the
    hourly aggregation last looked; written by a trigger on ``pricing_price_points`` (every
    insert path, in the inserting transaction), consumed by ``aggregate_hours``."""

    __tablename__ = "pricing_dirty_hours"
    __table_args__ = (Index("ix_pricing_dirty_hours_hour", "client_id", "pool_id", "hour"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    pool_id: Mapped[int] = mapped_column(Integer)
    hour: Mapped[datetime] = mapped_column(UTCDateTime)


class HourlyPrice(PricingBase):
    """Hourly min/avg/max of a pool's spot price; ``filled`` hours had no points (carried)."""

    __tablename__ = "pricing_hourly_prices"
    __table_args__ = (
        UniqueConstraint("client_id", "pool_id", "hour", name="uq_pricing_hourly_prices_hour"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    pool_id: Mapped[int] = mapped_column(Integer)
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    min_price: Mapped[float] = mapped_column(Float)
    avg_price: Mapped[float] = mapped_column(Float)
    max_price: Mapped[float] = mapped_column(Float)
    on_demand_price: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    filled: Mapped[bool] = mapped_column(Boolean, default=False)


class Report(PricingBase):
    """An agent report, kept for idempotency: a replayed ``report_id`` returns ``result``."""

    __tablename__ = "pricing_reports"
    __table_args__ = (
        UniqueConstraint("agent_id", "report_id", name="uq_pricing_reports_report_id"),
        Index("ix_pricing_reports_client", "client_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[int] = mapped_column(ForeignKey("pricing_agents.id", ondelete="CASCADE"))
    report_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Switch(PricingBase):
    """A move of an instance between pools (or to/from on-demand), as the agent reported it."""

    __tablename__ = "pricing_switches"
    __table_args__ = (Index("ix_pricing_switches_instance", "instance_id", "switched_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("pricing_instances.id", ondelete="CASCADE"))
    command_id: Mapped[int | None] = mapped_column(Integer)
    from_pool_id: Mapped[int | None] = mapped_column(Integer)
    to_pool_id: Mapped[int] = mapped_column(Integer)
    from_lifecycle: Mapped[str] = mapped_column(String(16))
    to_lifecycle: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    from_price: Mapped[float | None] = mapped_column(Float)
    to_price: Mapped[float | None] = mapped_column(Float)
    on_demand_price: Mapped[float | None] = mapped_column(Float)
    downtime_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    old_cloud_id: Mapped[str] = mapped_column(String(100), default="")
    new_cloud_id: Mapped[str] = mapped_column(String(100), default="")
    switched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Interruption(PricingBase):
    """A termination notice or rebalance recommendation for a cloud instance in a pool.

    ``(client_id, cloud_id, kind)`` is unique: duplicate or concurrent notices for one
    cloud instance collapse into one row, and so into one emergency replica.
    """

    __tablename__ = "pricing_interruptions"
    __table_args__ = (
        UniqueConstraint("client_id", "cloud_id", "kind", name="uq_pricing_interruptions_notice"),
        Index("ix_pricing_interruptions_pool", "client_id", "pool_id", "noticed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[int] = mapped_column(ForeignKey("pricing_instances.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(Integer)
    cloud_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    noticed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replica_id: Mapped[int | None] = mapped_column(Integer)


class Command(PricingBase):
    """A command for an agent (a switch), delivered on every poll until acknowledged."""

    __tablename__ = "pricing_commands"
    __table_args__ = (Index("ix_pricing_commands_agent", "agent_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("pricing_agents.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="switch")
    target_pool_id: Mapped[int | None] = mapped_column(Integer)
    target_lifecycle: Mapped[str] = mapped_column(String(16), default="spot")
    decision_id: Mapped[int | None] = mapped_column(Integer)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    issued_by: Mapped[str] = mapped_column(String(64), default="")
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(500), default="")


class Decision(PricingBase):
    """A decision with its inputs, the engine that made it and the outcome."""

    __tablename__ = "pricing_decisions"
    __table_args__ = (Index("ix_pricing_decisions_instance", "instance_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("pricing_instances.id", ondelete="CASCADE"))
    engine: Mapped[str] = mapped_column(String(64))
    requested_engine: Mapped[str] = mapped_column(String(64))
    fallback_reason: Mapped[str | None] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(16))
    target_pool_id: Mapped[int | None] = mapped_column(Integer)
    expected_saving_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(String(1000), default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    elapsed_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The ML model version that made the decision (the ``onnx`` engine); kept by value so a
    # deleted version's decisions still name it.
    model_version_id: Mapped[int | None] = mapped_column(Integer, index=True)
    model_name: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(64))


class Replica(PricingBase):
    """A standby replica of an agent's instance, in another pool, ready to be promoted."""

    __tablename__ = "pricing_replicas"
    __table_args__ = (
        Index("ix_pricing_replicas_agent", "agent_id", "status"),
        {"sqlite_autoincrement": True},  # ids never reused: interruptions refer to them
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("pricing_agents.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(Integer)
    lifecycle: Mapped[str] = mapped_column(String(16), default="spot")
    cloud_id: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="launching")
    sync_status: Mapped[str] = mapped_column(String(16), default="unknown")
    sync_lag_seconds: Mapped[float | None] = mapped_column(Float)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EngineSetting(PricingBase):
    """Platform-wide engine choice: ``active`` and ``fallback`` rows (key, engine name)."""

    __tablename__ = "pricing_engine_settings"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    engine: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClientSnapshot(PricingBase):
    """A client's daily figures, taken at 00:05 UTC for the day before."""

    __tablename__ = "pricing_client_snapshots"
    __table_args__ = (UniqueConstraint("client_id", "day", name="uq_pricing_client_snapshots_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))
    agents: Mapped[int] = mapped_column(Integer, default=0)
    agents_online: Mapped[int] = mapped_column(Integer, default=0)
    instances_spot: Mapped[int] = mapped_column(Integer, default=0)
    instances_on_demand: Mapped[int] = mapped_column(Integer, default=0)
    switches: Mapped[int] = mapped_column(Integer, default=0)
    interruptions: Mapped[int] = mapped_column(Integer, default=0)
    on_demand_cost: Mapped[float] = mapped_column(Float, default=0.0)
    actual_cost: Mapped[float] = mapped_column(Float, default=0.0)
    savings: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MonthlySavings(PricingBase):
    """Savings of one instance in one month (``YYYY-MM``), computed on the first of the next."""

    __tablename__ = "pricing_monthly_savings"
    __table_args__ = (
        UniqueConstraint(
            "client_id", "instance_id", "month", name="uq_pricing_monthly_savings_month"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[int] = mapped_column(Integer)
    month: Mapped[str] = mapped_column(String(7))
    hours: Mapped[float] = mapped_column(Float, default=0.0)
    on_demand_cost: Mapped[float] = mapped_column(Float, default=0.0)
    actual_cost: Mapped[float] = mapped_column(Float, default=0.0)
    savings: Mapped[float] = mapped_column(Float, default=0.0)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MlModel(PricingBase):
    """A named ML model; ``active_version_id`` is the version the ``onnx`` engine serves.

    One row per name holds the active version, so "exactly one active version per name"
    holds by construction; every change of it locks this row first.
    """

    __tablename__ = "pricing_ml_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    active_version_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MlModelVersion(PricingBase):
    """One uploaded ONNX artifact of a model, with its declared input schema.

    ``artifact`` is deferred: listing versions never reads the bytes. ``activated_at`` is the
    last activation; ``rolled_back_at`` is set when a fallback left this version (it is then
    no fallback target until activated again).
    """

    __tablename__ = "pricing_ml_model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_pricing_ml_model_versions_version"),
        {"sqlite_autoincrement": True},  # ids never reused: sessions are cached by id
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("pricing_ml_models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    input_schema: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    input_name: Mapped[str] = mapped_column(String(200))
    output_kind: Mapped[str] = mapped_column(String(16))
    opset: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    artifact: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
