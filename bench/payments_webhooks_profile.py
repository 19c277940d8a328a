"""Payments: where one verified webhook delivery spends its time (a profile, not a figure).

The same deliveries as ``payments_webhooks.py`` (capture-completed, redeliveries, unknown
events), sent in-process (httpx's ASGI transport, one at a time, no HTTP server) to the
platform on a fresh PostgreSQL database. First without a profiler: this process's CPU time
per delivery (less sensitive than wall time to a loaded machine) and the SQL statements per
delivery of each kind (counted on the engine; BEGIN/COMMIT excluded). Then, with
``PROFILE=1``, again under pyinstrument, printing its tree (``PROFILE_HTML=path`` also
writes an HTML report; needs ``pip install pyinstrument``). Skipped when PostgreSQL is
unreachable.

Run: ``.venv/bin/python bench/payments_webhooks_profile.py``
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx
import payments_webhooks as bench
import tomlkit
from _common import header, pg_reachable, row
from platform_payments.fakepaypal import CLIENT_ID, CLIENT_SECRET, FakePayPal
from sqlalchemy import event

from platform_core.testing import fresh_database, prepared

WARM = 20
SPLIT = int(os.environ.get("MEASURED", "600")) + WARM


async def run(directory: Path) -> None:
    fake = FakePayPal().start()
    try:
        key, cert_url = bench.certificate(fake)
        async with fresh_database("postgresql", directory) as url:
            config = directory / "plugins.toml"
            paypal = {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "base_url": fake.url,
                "webhook_id": bench.WEBHOOK_ID,
                "cert_url_prefixes": [f"{fake.url}/certs/"],
            }
            doc = {
                "core": {
                    "database_url": url,
                    "secret_key": "k" * 40,
                    "log_level": "WARNING",
                    "background": False,
                },
                "plugins": {"enabled": ["payments"], "payments": {"paypal": paypal}},
            }
            config.write_text(tomlkit.dumps(doc))
            ids = await bench.seed(config, bench.ORDERS)
            work = bench.deliveries(key, cert_url, list(ids))
            async with prepared(config) as platform:
                statements = [0]

                def count(conn: object, cursor: object, sql: str, *args: object) -> None:
                    statements[0] += 1
                    if os.environ.get("SHOW_SQL") == "1":
                        print(" ".join(sql.split())[:150])

                engine = platform.ctx.db.engine.sync_engine
                event.listen(engine, "before_cursor_execute", count)
                transport = httpx.ASGITransport(app=platform.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    path = "/api/payments/webhooks/paypal"
                    for body, headers in work[:WARM]:  # certificate, pools, imports
                        await c.post(path, content=body, headers=headers)
                    per_kind: dict[str, list[int]] = {}
                    cpu_of: dict[str, float] = {}
                    cpu, wall = time.process_time(), time.perf_counter()
                    for body, headers in work[WARM:SPLIT]:
                        before, began = statements[0], time.process_time()
                        r = await c.post(path, content=body, headers=headers)
                        assert r.status_code == 200, r.text
                        outcome = r.json()["outcome"]
                        cpu_of[outcome] = cpu_of.get(outcome, 0) + time.process_time() - began
                        per_kind.setdefault(outcome, []).append(statements[0] - before)
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    n = SPLIT - WARM
                    header("payments webhook cost (in-process, sequential, postgresql)")
                    row("deliveries", str(n))
                    row("CPU ms per delivery (this process)", f"{1000 * cpu / n:.2f}")
                    row("wall ms per delivery", f"{1000 * wall / n:.2f}")
                    for outcome, counts in sorted(per_kind.items()):
                        row(
                            f"SQL statements per delivery: {outcome}",
                            f"{sum(counts) / len(counts):.1f} ({len(counts)} deliveries)",
                        )
                    for outcome, counts in sorted(per_kind.items()):
                        row(
                            f"CPU ms per delivery: {outcome}",
                            f"{1000 * cpu_of[outcome] / len(counts):.2f}",
                        )
                    if os.environ.get("PROFILE") == "1":
                        from pyinstrument import Profiler

                        profiler = Profiler(async_mode="enabled")
                        with profiler:
                            for body, headers in work[SPLIT:]:
                                await c.post(path, content=body, headers=headers)
                        print(profiler.output_text(unicode=False, color=False))
                        if os.environ.get("PROFILE_HTML"):
                            Path(os.environ["PROFILE_HTML"]).write_text(profiler.output_html())
    finally:
        fake.stop()


def main() -> None:
    if not pg_reachable():
        header("payments webhook profile")
        row("skipped", "PostgreSQL unreachable")
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))


if __name__ == "__main__":
    main()
