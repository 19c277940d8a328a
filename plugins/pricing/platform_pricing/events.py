"""Events the pricing plugin publishes: ``pricing.*``. Every payload names its client, except
the platform-wide ``pricing.ml_model.*`` (admins' ML models belong to no client)."""

from __future__ import annotations

from typing import ClassVar

from platform_core import Event


class PricingEvent(Event):
    """What every pricing event carries."""

    client_id: int


class AgentRegistered(PricingEvent):
    """An agent registered (or re-registered, rotating its token)."""

    event_name: ClassVar[str] = "pricing.agent.registered"
    agent_id: int
    agent: str
    instance_id: int


class AgentOffline(PricingEvent):
    """An agent sent no heartbeat for longer than ``agent_offline_after_seconds``."""

    event_name: ClassVar[str] = "pricing.agent.offline"
    agent_id: int
    agent: str
    last_heartbeat_at: str


class AgentOnline(PricingEvent):
    """An offline agent sent a heartbeat again."""

    event_name: ClassVar[str] = "pricing.agent.online"
    agent_id: int
    agent: str


class SwitchIssued(PricingEvent):
    """A switch command was issued to an agent (by a decision or forced)."""

    event_name: ClassVar[str] = "pricing.switch.issued"
    command_id: int
    agent_id: int
    instance_id: int
    target_pool_id: int | None
    target_lifecycle: str
    forced: bool
    reason: str


class SwitchCompleted(PricingEvent):
    """An agent reported a completed switch."""

    event_name: ClassVar[str] = "pricing.switch.completed"
    switch_id: int
    agent_id: int
    instance_id: int
    from_pool_id: int | None
    to_pool_id: int
    to_lifecycle: str


class TerminationNotice(PricingEvent):
    """The cloud announced it will reclaim an instance (sent once per cloud instance)."""

    event_name: ClassVar[str] = "pricing.termination.notice"
    agent_id: int
    instance_id: int
    cloud_id: str
    pool_id: int
    action_at: str | None


class RebalanceRecommendation(PricingEvent):
    """The cloud recommends moving an instance: its pool's interruption risk is rising."""

    event_name: ClassVar[str] = "pricing.rebalance.recommended"
    agent_id: int
    instance_id: int
    cloud_id: str
    pool_id: int


class ReplicaPromoted(PricingEvent):
    """A standby replica took over as the agent's instance."""

    event_name: ClassVar[str] = "pricing.replica.promoted"
    replica_id: int
    agent_id: int
    instance_id: int
    pool_id: int
    emergency: bool


class MlModelActivated(Event):
    """The active version of an ML model changed (``how``: ``activate`` or ``fallback``);
    ``previous`` is the version active before (None: none)."""

    event_name: ClassVar[str] = "pricing.ml_model.activated"
    model: str
    version: str
    previous: str | None
    how: str
