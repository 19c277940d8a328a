"""Fixtures of the pricing tests: the ``platform`` fixture enables pricing; ``tenants`` builds
clients and agents through the API exactly as real clients and agents do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest


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
