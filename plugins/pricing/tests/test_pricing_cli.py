"""``platformctl pricing clients|agents|import-prices|savings``.

The CLI runs through the testing kit's ``run_cli`` (the installed ``platformctl``, in-process)
against the ``platform`` fixture's database, so these tests run on SQLite and, with
``PLATFORM_TEST_DATABASE_URL``, on PostgreSQL; the data is made and checked through the API.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from platform_pricing.models import Agent, Placement, PricePoint
from sqlalchemy import func, select, update


@pytest.fixture
async def platform(platform_factory):
    """The platform the tests make data through; no background jobs beside the CLI."""
    return await platform_factory(enabled=["pricing"], core={"background": False})


@pytest.fixture
def cli(run_cli):
    """``await cli(*args)``: run ``platformctl pricing ARGS``; returns the Result."""
    return functools.partial(run_cli, "pricing")


def rows(result) -> dict[str, list[str]]:
    """Table rows by their first cell."""
    out = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) > 1 and cells[0] and cells[0][0].isalnum():
            out[cells[0]] = cells[1:]
    return out


async def test_clients_create_list_and_refuse_duplicates_and_bad_names(cli, admin_client):
    result = await cli("clients", "create", "acme", "--display-name", "Acme Corp")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("client acme created (id ")
    listed = (await admin_client.get("/api/pricing/clients")).json()["items"]
    assert [(c["name"], c["display_name"]) for c in listed] == [("acme", "Acme Corp")]

    result = await cli("clients", "list")
    assert result.exit_code == 0, result.output
    assert rows(result)[str(listed[0]["id"])][:2] == ["acme", "Acme Corp"]

    again = await cli("clients", "create", "acme")
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    bad = await cli("clients", "create", "Not A Slug!")
    assert bad.exit_code == 2
    assert "invalid client" in bad.stderr
    assert len((await admin_client.get("/api/pricing/clients")).json()["items"]) == 1


async def test_client_token_works_against_the_api(cli, platform, admin_client):
    await cli("clients", "create", "acme")
    await cli("clients", "create", "other")
    result = await cli("clients", "token", "acme")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    client = platform.client(token)
    seen = (await client.get("/api/pricing/clients")).json()["items"]
    assert [c["name"] for c in seen] == ["acme"]
    # A plain client token may not change the policy; an --admin token may.
    cid = seen[0]["id"]
    patch = {"policy": {"min_saving_percent": 25}}
    assert (await client.patch(f"/api/pricing/clients/{cid}", json=patch)).status_code == 403
    admin_token = (await cli("clients", "token", str(cid), "--admin")).stdout.strip()
    r = await platform.client(admin_token).patch(f"/api/pricing/clients/{cid}", json=patch)
    assert r.status_code == 200, r.text
    assert r.json()["effective_policy"]["min_saving_percent"] == 25

    missing = await cli("clients", "token", "nobody")
    assert missing.exit_code == 1
    assert "not found" in missing.stderr


async def test_agents_list_all_and_offline_only(cli, platform, tenants):
    c = await tenants.client("acme")
    up = await tenants.agent(c, "up")
    down = await tenants.agent(c, "down")
    async with platform.ctx.db.session() as session:
        await session.execute(update(Agent).where(Agent.id == down.id).values(status="offline"))
    everyone = await cli("agents", "list")
    assert everyone.exit_code == 0, everyone.output
    assert {k: v[1:3] for k, v in rows(everyone).items()} == {
        str(up.id): ["up", "online"],
        str(down.id): ["down", "offline"],
    }
    offline = await cli("agents", "list", "--offline")
    assert set(rows(offline)) == {str(down.id)}


async def test_import_prices_all_or_nothing(cli, platform, tmp_path, tenants):
    c = await tenants.client("acme")
    good = tmp_path / "prices.csv"
    good.write_text(
        "region,zone,instance_type,spot_price,on_demand_price,observed_at\n"
        "us-east-1,us-east-1a,m5.large,0.031,0.096,2026-01-01T00:00:00Z\n"
        "us-east-1,us-east-1a,m5.large,0.032,0.096,2026-01-01T00:01:00Z\n"
        "us-east-1,us-east-1b,m5.large,0.029,0.096,2026-01-01T00:00:00+00:00\n",
        encoding="utf-8",
    )
    result = await cli("import-prices", str(good), "--client", "acme")
    assert result.exit_code == 0, result.output
    assert "imported 3 price points" in result.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "region,zone,instance_type,spot_price,on_demand_price,observed_at\n"
        "us-east-1,us-east-1a,m5.large,0.031,0.096,2026-01-02T00:00:00Z\n"
        "us-east-1,us-east-1a,m5.large,cheap,0.096,2026-01-02T00:01:00Z\n",
        encoding="utf-8",
    )
    failed = await cli("import-prices", str(bad), "--client", "acme")
    assert failed.exit_code == 1
    assert "line 3: spot_price" in failed.stderr
    naive = tmp_path / "naive.csv"
    naive.write_text(
        "region,zone,instance_type,spot_price,on_demand_price,observed_at\n"
        "us-east-1,us-east-1a,m5.large,0.031,0.096,2026-01-02T00:00:00\n",
        encoding="utf-8",
    )
    failed = await cli("import-prices", str(naive), "--client", "acme")
    assert failed.exit_code == 1
    assert "line 2: observed_at" in failed.stderr
    short = tmp_path / "short.csv"
    short.write_text(
        "region,zone,instance_type,spot_price,on_demand_price,observed_at\n"
        "us-east-1,us-east-1a,m5.large\n",
        encoding="utf-8",
    )
    failed = await cli("import-prices", str(short), "--client", "acme")
    assert failed.exit_code == 1, failed.output
    assert "line 2: spot_price" in failed.stderr
    assert "missing cell: the row has 3 of the header's 6 cells" in failed.stderr
    control = tmp_path / "control.csv"
    control.write_text(
        "region,zone,instance_type,spot_price,on_demand_price,observed_at\n"
        "us-east-1,us-east-1\x00a,m5.large,0.031,0.096,2026-01-02T00:00:00Z\n",
        encoding="utf-8",
    )
    failed = await cli("import-prices", str(control), "--client", "acme")
    assert failed.exit_code == 1, failed.output
    assert "line 2: zone" in failed.stderr
    assert (
        await cli("import-prices", str(tmp_path / "nope.csv"), "--client", "acme")
    ).exit_code == 2

    async with platform.ctx.db.session() as session:
        stored = await session.execute(
            select(PricePoint.client_id, func.count()).group_by(PricePoint.client_id)
        )
        assert stored.all() == [(c.id, 3)]


async def test_savings_for_a_month(cli, platform, tenants):
    c = await tenants.client("acme")
    a = await tenants.agent(c, "a1")
    # One placement for the two hours 10:00-12:00 on 2026-03-02 at 0.25/h, on-demand 1.00/h:
    # savings = 2 h * (1.00 - 0.25) = 1.50.
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)
    async with platform.ctx.db.session() as session:
        placement = await session.scalar(
            select(Placement).where(Placement.instance_id == a.instance_id)
        )
        placement.started_at = start
        placement.ended_at = start + timedelta(hours=2)
        session.add(
            PricePoint(
                client_id=c.id,
                pool_id=placement.pool_id,
                observed_at=start,
                spot_price=0.25,
                on_demand_price=1.0,
            )
        )
    result = await cli("savings", "--client", "acme", "--month", "2026-03")
    assert result.exit_code == 0, result.output
    table = rows(result)
    assert table[str(a.instance_id)] == ["2.00", "2.0000", "0.5000", "1.5000"]
    assert table["total"] == ["2.00", "2.0000", "0.5000", "1.5000"]
    empty = await cli("savings", "--client", "acme", "--month", "2026-04")
    assert rows(empty)["total"] == ["0.00", "0.0000", "0.0000", "0.0000"]
    assert (await cli("savings", "--client", "acme", "--month", "2026-13")).exit_code == 2
