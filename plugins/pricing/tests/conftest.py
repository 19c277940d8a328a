"""Fixtures of the pricing tests: the ``platform`` fixture enables pricing; ``tenants`` builds
clients and agents through the API exactly as real clients and agents do; ``world`` writes
rows straight to the tables for tests that need exact times."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from platform_pricing.models import (
    Agent,
    Client,
    Instance,
    Interruption,
    Placement,
    PricePoint,
    Switch,
)
from platform_pricing.service.pools import pool_id as get_pool_id


@pytest.fixture
def platform_plugins() -> list[str]:
    """The ``platform`` fixture enables the pricing plugin only."""
    return ["pricing"]


@dataclass
class AgentHandle:
    """A registered agent: its records and an HTTP client holding its agent token."""

    id: int
    instance_id: int
    http: httpx.AsyncClient
    body: dict[str, Any]

    async def report_prices(
        self, *quotes: tuple[str, float], od: float = 0.10, ago: int = 60
    ) -> None:
        """Report one price per ``(zone, spot)`` of us-east-1 / m5.large, ``ago`` seconds ago."""
        at = (datetime.now(UTC) - timedelta(seconds=ago)).isoformat()
        points = [
            {
                "region": "us-east-1",
                "zone": zone,
                "instance_type": "m5.large",
                "spot_price": spot,
                "on_demand_price": od,
                "observed_at": at,
            }
            for zone, spot in quotes
        ]
        r = await self.http.post(
            f"/api/pricing/agents/{self.id}/reports/pricing",
            json={"report_id": uuid.uuid4().hex, "points": points},
        )
        assert r.status_code in (200, 201), r.text


@dataclass
class ClientHandle:
    """A client (tenant): its record, a client token and a client-admin token."""

    id: int
    name: str
    http: httpx.AsyncClient
    admin_http: httpx.AsyncClient
    agents: list[AgentHandle] = field(default_factory=list)


class Tenants:
    """Creates clients and agents through the API."""

    def __init__(self, platform: Any, admin: httpx.AsyncClient) -> None:
        self.platform = platform
        self.admin = admin

    async def client(self, name: str | None = None, **extra: Any) -> ClientHandle:
        """A new client with a plain token and a client-admin token."""
        name = name or f"c-{uuid.uuid4().hex[:8]}"
        r = await self.admin.post("/api/pricing/clients", json={"name": name, **extra})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        tokens = []
        for admin in (False, True):
            t = await self.admin.post(
                f"/api/pricing/clients/{cid}/tokens", json={"name": "t", "admin": admin}
            )
            assert t.status_code == 201, t.text
            tokens.append(t.json()["token"])
        return ClientHandle(
            cid, name, self.platform.client(tokens[0]), self.platform.client(tokens[1])
        )

    async def agent(
        self,
        client: ClientHandle,
        name: str | None = None,
        *,
        region: str = "us-east-1",
        zone: str = "us-east-1a",
        instance_type: str = "m5.large",
        lifecycle: str = "spot",
        cloud_id: str | None = None,
    ) -> AgentHandle:
        """Register an agent with ``client``'s token; returns it with its own client."""
        body = {
            "name": name or f"a-{uuid.uuid4().hex[:8]}",
            "version": "1.0.0",
            "instance": {
                "cloud_id": cloud_id or f"i-{uuid.uuid4().hex[:12]}",
                "region": region,
                "zone": zone,
                "instance_type": instance_type,
                "lifecycle": lifecycle,
            },
        }
        r = await client.http.post("/api/pricing/agents/register", json=body)
        assert r.status_code == 201, r.text
        out = r.json()
        handle = AgentHandle(
            out["agent"]["id"], out["instance"]["id"], self.platform.client(out["token"]), out
        )
        client.agents.append(handle)
        return handle


@pytest.fixture
async def tenants(platform: Any, admin_client: httpx.AsyncClient) -> Tenants:
    """Make clients and agents: ``c = await tenants.client(); a = await tenants.agent(c)``."""
    return Tenants(platform, admin_client)


def at(text: str) -> datetime:
    """A naive ISO timestamp read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class World:
    """Clients, instances, placements and prices written directly to the database."""

    def __init__(self, platform: Any) -> None:
        self.platform = platform

    async def client(self) -> tuple[int, Any]:
        name = f"c-{uuid.uuid4().hex[:8]}"
        user = await self.platform.user("member", username=f"pricing-client-{name}")
        async with self.platform.ctx.db.session() as s:
            row = Client(name=name, user_id=user.id, policy={})
            s.add(row)
            await s.flush()
            cid = row.id
        token = await self.platform.token(scopes=["pricing:client"], user=user)
        return cid, self.platform.client(token)

    async def pool(self, zone: str = "us-east-1a", itype: str = "m5.large") -> int:
        async with self.platform.ctx.db.session() as s:
            return await get_pool_id(s, "us-east-1", zone, itype)

    async def instance(self, client_id: int, pool_id: int, lifecycle: str = "spot") -> int:
        user = await self.platform.user("member")
        async with self.platform.ctx.db.session() as s:
            agent = Agent(
                client_id=client_id,
                user_id=user.id,
                name=f"a-{user.id}",
                registered_at=at("2024-01-01T00:00:00"),
            )
            s.add(agent)
            await s.flush()
            inst = Instance(
                client_id=client_id,
                agent_id=agent.id,
                cloud_id=f"i-{uuid.uuid4().hex[:8]}",
                pool_id=pool_id,
                lifecycle=lifecycle,
                created_at=at("2024-01-01T00:00:00"),
            )
            s.add(inst)
            await s.flush()
            return inst.id

    async def place(
        self,
        client_id: int,
        instance_id: int,
        pool_id: int,
        start: str,
        end: str | None,
        lifecycle: str = "spot",
    ) -> None:
        async with self.platform.ctx.db.session() as s:
            s.add(
                Placement(
                    client_id=client_id,
                    instance_id=instance_id,
                    pool_id=pool_id,
                    lifecycle=lifecycle,
                    started_at=at(start),
                    ended_at=None if end is None else at(end),
                )
            )

    async def prices(
        self, client_id: int, pool_id: int, points: list[tuple[str | datetime, float, float]]
    ) -> None:
        async with self.platform.ctx.db.session() as s:
            s.add_all(
                PricePoint(
                    client_id=client_id,
                    pool_id=pool_id,
                    observed_at=t if isinstance(t, datetime) else at(t),
                    spot_price=spot,
                    on_demand_price=od,
                )
                for t, spot, od in points
            )

    async def switch(self, client_id: int, instance_id: int, a: int, b: int, when: str) -> None:
        async with self.platform.ctx.db.session() as s:
            s.add(
                Switch(
                    client_id=client_id,
                    instance_id=instance_id,
                    from_pool_id=a,
                    to_pool_id=b,
                    from_lifecycle="spot",
                    to_lifecycle="spot",
                    reason="cheaper",
                    switched_at=at(when),
                )
            )

    async def interruption(
        self, client_id: int, instance_id: int, pool: int, when: datetime
    ) -> None:
        async with self.platform.ctx.db.session() as s:
            s.add(
                Interruption(
                    client_id=client_id,
                    instance_id=instance_id,
                    pool_id=pool,
                    cloud_id=f"i-{uuid.uuid4().hex[:8]}",
                    kind="termination",
                    noticed_at=when,
                )
            )


@pytest.fixture
def world(platform: Any) -> World:
    """Write clients, instances, placements, prices, switches and interruptions directly."""
    return World(platform)


@pytest.fixture
def world_of() -> type[World]:
    """``world_of(platform)``: a :class:`World` over another platform (custom settings)."""
    return World
