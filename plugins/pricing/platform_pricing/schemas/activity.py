"""Schemas: the admin activity feed across clients and client growth over time."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from platform_core import Page

ActivityKind = Literal["client", "registration", "switch", "interruption", "decision"]
GrowthPeriod = Literal["day", "month"]


class ActivityItem(BaseModel):
    """One event of the feed: what happened (``kind``), to whom and when.

    ``id`` is the row's id in its own table (a client, agent, switch, interruption or
    decision); ``summary`` is a short word (the agent's name, the target lifecycle, the
    notice kind, the decision's outcome), ``detail`` more of it (version, reason, cloud id,
    engine).
    """

    kind: ActivityKind
    id: int
    at: datetime
    client_id: int
    agent_id: int | None
    instance_id: int | None
    summary: str
    detail: str


class ActivityPage(Page[ActivityItem]):
    """A page of the activity feed, newest first."""


class GrowthBucket(BaseModel):
    """New and cumulative clients, agents and instances in one day or month (UTC)."""

    start: str
    clients: int
    agents: int
    instances: int
    total_clients: int
    total_agents: int
    total_instances: int


class Growth(BaseModel):
    """Client growth per period, every period of the range present (zeros included)."""

    period: GrowthPeriod
    since: str
    until: str
    buckets: list[GrowthBucket]
