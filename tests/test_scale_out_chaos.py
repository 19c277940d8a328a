"""Processes killed under write load: 3 ``serve``, 2 ``worker``, 2 ``scheduler`` processes.

One fresh PostgreSQL database and Redis (a Redis stream and key prefix of this test's
own). A load driver sends a mix of writes (inventory devices, scheduler bookings, pricing
reports) round-robin through the three API processes for ``LOAD_SECONDS``, and on until
the restarted API process has acknowledged writes of it; meanwhile the worker running
``jobstest.slow`` and one API process are killed with SIGKILL and started again.
Afterwards:

- every write acknowledged with a 2xx is in the database (by name, id and report id);
- no answer is a 5xx (or any other error status), and the only requests without an answer
  are those sent to the killed API process from the moment it was killed;
- no periodic slot succeeded twice, and ``jobstest.tick`` ran once per slot plus once per
  attempt declared lost;
- the slow job's attempt on the killed worker was declared lost and its retry ran to
  success on another worker;
- after the load, each kind of write goes through each process (the restarted one too);
- every process that was not killed (and both restarted ones) stops cleanly on SIGTERM.

The processes are started with ``Cluster`` of ``tests/test_jobs_distributed.py`` (the
``jobstest`` plugin pip-installed into a directory only the subprocesses see).
Runs only where PostgreSQL and Redis answer, and always in CI (``CI`` set): there a
missing service is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import signal
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from platform_core.testing import LOCAL_POSTGRES, TEST_DATABASE_ENV, fresh_database, prepared


def _helpers() -> Any:
    """``tests/test_jobs_distributed.py`` as a module (tests are not a package here)."""
    path = Path(__file__).with_name("test_jobs_distributed.py")
    spec = importlib.util.spec_from_file_location("_jobs_distributed_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_jobs = _helpers()
Cluster = _jobs.Cluster
jobstest_site = _jobs.jobstest_site  # the session fixture, shared under the same name
stream = _jobs.stream  # a Redis stream of this test's own, deleted afterwards
REDIS_URL = _jobs.REDIS_URL

LOAD_SECONDS = 12.0  # and on until the killed API process has served again for a while
MAX_LOAD_SECONDS = 120.0  # a safety net only: on a busy machine a restart takes long
WRITERS = 6  # concurrent writers, each sending its requests to the three processes in turn
PAUSE = 0.05  # seconds between a writer's writes: load, not a CPU hog delaying the restarts
SLOW_SECONDS = 4
SECRET = "chaos-test-secret-" + "x" * 32


def _services_up() -> bool:
    """True when PostgreSQL (the testing kit's server) and Redis accept connections."""
    server = os.environ.get(TEST_DATABASE_ENV) or LOCAL_POSTGRES
    url = sqlalchemy.make_url(server)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2):
            pass
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (OSError, redis.RedisError):
        return False
    return True


pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and not _services_up(),
    reason="needs PostgreSQL and Redis (always run in CI)",
)


@dataclass
class Outcome:
    """One write the load driver sent: where, what, and how it ended."""

    kind: str  # device | booking | report
    process: int  # index of the API process
    key: str  # the device's name, the report's id; the booking's id once answered
    status: int | None  # None: no answer (connection refused or dropped)
    ended: float  # time.monotonic() when the answer or the error came
    took: float  # seconds from sending to ``ended``


def _config(path: Path, url: str, broker: str, prefix: str, record: Path, jobs: bool) -> Path:
    """The ``plugins.toml``; ``jobs=False`` leaves out the ``jobstest`` plugin (which only
    the subprocesses can import) for preparing the database in this process."""
    enabled = '"inventory", "scheduler", "pricing"' + (', "jobstest"' if jobs else "")
    path.write_text(
        f"""
[core]
database_url = "{url}"
secret_key = "{SECRET}"
log_format = "text"
log_level = "WARNING"

[core.jobs]
broker_url = "{broker}"
lease_seconds = 5
poll_seconds = 0.2

[core.database]  # generous: this test is about killed processes, not a slow database
connect_timeout_seconds = 30
pool_timeout_seconds = 30
statement_timeout_seconds = 30

[core.redis]
url = "{REDIS_URL}"
prefix = "{prefix}"

[core.shutdown]
drain_seconds = 0
grace_seconds = 5

[plugins]
enabled = [{enabled}]

[plugins.jobstest]
record_file = "{record}"
tick_ms = 500
slow_seconds = {SLOW_SECONDS}
""",
        encoding="utf-8",
    )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(check: Any, timeout: float, what: str, cluster: Any) -> Any:
    """Await ``check()`` until truthy; fail naming ``what`` (with the processes' logs)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = {name: cluster.log(name)[-1500:] for name in cluster.procs}
            raise AssertionError(f"timed out waiting for {what}: {logs}")
        await asyncio.sleep(0.1)


async def _healthy(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def _rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sqlalchemy.text(sql), params)).all())


async def _seed(client: httpx.AsyncClient, base: str, admin: str) -> dict[str, Any]:
    """Through the API: a device type, three devices to book, a pricing client and agent."""
    auth = {"Authorization": f"Bearer {admin}"}

    async def post(path: str, body: dict[str, Any], headers: dict[str, str] = auth) -> Any:
        answer = await client.post(f"{base}{path}", json=body, headers=headers)
        assert answer.status_code == 201, (path, answer.text)
        return answer.json()

    maker = await post("/api/inventory/manufacturers", {"name": "Acme"})
    kind = await post(
        "/api/inventory/device-types", {"manufacturer_id": maker["id"], "model": "S1"}
    )
    devices = [
        (await post("/api/inventory/devices", {"name": f"lab-{i}", "device_type_id": kind["id"]}))[
            "id"
        ]
        for i in range(3)
    ]
    tenant = await post("/api/pricing/clients", {"name": "chaos"})
    token = await post(f"/api/pricing/clients/{tenant['id']}/tokens", {"name": "t"})
    agent = await post(
        "/api/pricing/agents/register",
        {
            "name": "agent-1",
            "version": "1.0.0",
            "instance": {
                "cloud_id": "i-chaos",
                "region": "us-east-1",
                "zone": "us-east-1a",
                "instance_type": "m5.large",
                "lifecycle": "spot",
            },
        },
        {"Authorization": f"Bearer {token['token']}"},
    )
    return {
        "device_type": kind["id"],
        "devices": devices,
        "agent": agent["agent"]["id"],
        "agent_token": agent["token"],
    }


class LoadDriver:
    """Writers sending a mix of writes, each request to the next of the API processes."""

    def __init__(
        self, bases: list[str], admin: str, member: str, seed: dict[str, Any], start: datetime
    ) -> None:
        self.bases = bases
        self.seed = seed
        self.auth = {
            "device": {"Authorization": f"Bearer {admin}"},
            "booking": {"Authorization": f"Bearer {member}"},
            "report": {"Authorization": f"Bearer {seed['agent_token']}"},
        }
        self.start = start  # bookings: hour n after this, n unique: no two ever overlap
        self.counter = itertools.count()
        self.turns = {kind: itertools.count() for kind in self.auth}  # round-robin per kind
        self.outcomes: list[Outcome] = []
        self.seconds = 0.0  # how long the load ran

    def _request(self, kind: str, n: int) -> tuple[str, dict[str, Any], str]:
        """Path, body and key of write number ``n``."""
        if kind == "device":
            name = f"chaos-{n}"
            return (
                "/api/inventory/devices",
                {"name": name, "device_type_id": self.seed["device_type"]},
                name,
            )
        if kind == "booking":
            begin = self.start + timedelta(hours=n)
            body = {
                "device_ids": [self.seed["devices"][n % 3]],
                "start": begin.isoformat(),
                "end": (begin + timedelta(hours=1)).isoformat(),
                "purpose": f"chaos {n}",
            }
            return "/api/scheduler/bookings", body, ""
        report = f"r-{n}"
        point = {
            "region": "us-east-1",
            "zone": "us-east-1a",
            "instance_type": "m5.large",
            "spot_price": 0.03 + n / 100_000,
            "on_demand_price": 0.1,
            "observed_at": (self.start - timedelta(days=2, seconds=n)).isoformat(),
        }
        path = f"/api/pricing/agents/{self.seed['agent']}/reports/pricing"
        return path, {"report_id": report, "points": [point]}, report

    async def write(self, client: httpx.AsyncClient, kind: str) -> None:
        """Send one write of ``kind`` to the next process and record how it ended."""
        n = next(self.counter)
        process = next(self.turns[kind]) % len(self.bases)
        path, body, key = self._request(kind, n)
        sent = time.monotonic()
        try:
            answer = await client.post(
                f"{self.bases[process]}{path}", json=body, headers=self.auth[kind]
            )
        except httpx.TransportError:
            ended = time.monotonic()
            self.outcomes.append(Outcome(kind, process, key, None, ended, ended - sent))
            return
        if kind == "booking" and answer.is_success:
            key = str(answer.json()["id"])
        ended = time.monotonic()
        self.outcomes.append(Outcome(kind, process, key, answer.status_code, ended, ended - sent))

    async def run(self, client: httpx.AsyncClient, seconds: float, also: asyncio.Event) -> None:
        """``WRITERS`` writers for ``seconds``, and on until ``also`` is set (at most
        ``MAX_LOAD_SECONDS``)."""
        began = time.monotonic()
        deadline, cap = began + seconds, began + MAX_LOAD_SECONDS
        kinds = ("device", "booking", "report")

        def over() -> bool:
            now = time.monotonic()
            return now >= cap or (now >= deadline and also.is_set())

        async def writer(first: int) -> None:
            for kind in itertools.islice(itertools.cycle(kinds), first, None):
                if over():
                    return
                await self.write(client, kind)
                await asyncio.sleep(PAUSE)

        await asyncio.gather(*(writer(i) for i in range(WRITERS)))
        self.seconds = time.monotonic() - began


def _worker_pid(worker_id: str) -> int:
    """The pid in a job run's ``worker`` column (``worker:<host>:<pid>:...``)."""
    return int(worker_id.split(":")[2])


async def test_writes_and_jobs_survive_sigkill_of_an_api_process_and_a_worker(
    tmp_path: Path, jobstest_site: Path, stream: str
) -> None:
    prefix = f"chaos-{uuid.uuid4().hex[:10]}"
    async with fresh_database("postgresql", tmp_path) as url:
        cluster = Cluster(tmp_path, jobstest_site, f"{REDIS_URL}?queue={stream}")
        broker = f"{REDIS_URL}?queue={stream}"
        _config(cluster.config, url, broker, prefix, cluster.record, jobs=True)
        setup = _config(tmp_path / "setup.toml", url, broker, prefix, cluster.record, jobs=False)
        async with prepared(setup) as platform:
            admin = await platform.token("admin")
            member = await platform.token("member")
        engine = create_async_engine(url)
        try:
            await _chaos(cluster, engine, admin, member)
        finally:
            cluster.kill_all()
            await engine.dispose()
            keys = redis.Redis.from_url(REDIS_URL)
            for key in keys.scan_iter(f"{prefix}*"):
                keys.delete(key)
            keys.close()


async def _chaos(cluster: Any, engine: AsyncEngine, admin: str, member: str) -> None:
    began = time.monotonic()
    phases: list[str] = []

    def phase(what: str) -> None:
        phases.append(f"{what} {time.monotonic() - began:.1f}s")

    ports = [_free_port() for _ in range(3)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    for i, port in enumerate(ports):
        cluster.start(f"serve{i}", "serve", "--port", str(port))
    workers = {
        cluster.start(f"worker{i}", "worker", "--grace", "5").pid: f"worker{i}" for i in (1, 2)
    }
    for i in (1, 2):
        cluster.start(f"scheduler{i}", "scheduler")

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for base in bases:
            await _until(lambda b=base: _healthy(client, b), 60, f"{base} to serve", cluster)
        phase("served")
        seed = await _seed(client, bases[0], admin)

        ticked = (
            "SELECT count(*) FROM core_job_runs WHERE job = 'jobstest.tick' AND state = 'succeeded'"
        )
        await _until(lambda: _scalar(engine, ticked), 60, "the first periodic run", cluster)
        for name in workers.values():
            await _until(lambda n=name: _logged(cluster, n, "worker started"), 30, name, cluster)

        queued = await client.post(
            f"{bases[0]}/api/core/jobs/jobstest.slow/run",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert queued.status_code == 202, queued.text
        slow_id = queued.json()["id"]
        running = "SELECT worker FROM core_job_runs WHERE id = :id AND state = 'running'"
        holder = await _until(
            lambda: _scalar(engine, running, id=slow_id), 30, "the slow job to start", cluster
        )
        victim_pid = _worker_pid(holder)
        assert victim_pid in workers, (holder, workers)
        victim_worker = workers[victim_pid]
        phase("slow job running")

        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        driver = LoadDriver(bases, admin, member, seed, start)
        served_again = asyncio.Event()
        load = asyncio.create_task(driver.run(client, LOAD_SECONDS, served_again))

        await asyncio.sleep(1.0)  # the slow job is mid-run (it started before the load)
        cluster.procs[victim_worker].send_signal(signal.SIGKILL)
        await asyncio.sleep(2.0)
        cluster.procs["serve1"].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.sleep(1.0)  # refused connections for a while
        cluster.procs[victim_worker].wait(5)
        cluster.procs["serve1"].wait(5)
        cluster.start(f"{victim_worker}-again", "worker", "--grace", "5")
        cluster.start("serve1-again", "serve", "--port", str(ports[1]))
        await _until(lambda: _healthy(client, bases[1]), 90, "serve1 to serve again", cluster)
        back_at = time.monotonic()
        phase("serve1 back")

        async def restarted_took_writes() -> bool:
            return any(
                o.process == 1 and o.status is not None and o.ended > back_at
                for o in driver.outcomes
            )

        # The load goes on until the restarted process has acknowledged writes of it.
        await _until(restarted_took_writes, 60, "writes through the restarted serve1", cluster)
        await asyncio.sleep(1.0)
        served_again.set()
        await load
        phase("load done")

        # After the load: every process (the restarted one too) takes every kind of write.
        after = len(driver.outcomes)
        for kind in ("device", "booking", "report"):
            for _ in range(3):  # the per-kind round-robin: once through each process
                await driver.write(client, kind)
        late = driver.outcomes[after:]
        assert [o.status for o in late] == [201] * 9, late
        assert {(o.kind, o.process) for o in late} == {
            (k, p) for k in ("device", "booking", "report") for p in (0, 1, 2)
        }

        slow_sql = (
            "SELECT attempt, state, trigger, worker, error FROM core_job_runs "
            "WHERE job = 'jobstest.slow' ORDER BY attempt"
        )

        async def slow_rerun() -> list[Any]:
            rows = await _rows(engine, slow_sql)
            return rows if any(r.state == "succeeded" for r in rows) else []

        slow_runs = await _until(slow_rerun, 60, "the killed slow run to run again", cluster)
        await asyncio.sleep(1.0)  # a few more periodic slots after the chaos
        phase("slow job rerun")
        alive = {name: proc.poll() is None for name, proc in cluster.procs.items()}
        codes = cluster.stop_all()
        phase("stopped")

    print(
        f"\nchaos: {len(driver.outcomes)} writes in {driver.seconds:.1f} s, "
        f"{sum(o.status is None for o in driver.outcomes)} unanswered (killed process), "
        f"slowest answer {max(o.took for o in driver.outcomes):.2f} s, "
        f"serve1 down {back_at - killed_at:.1f} s; {', '.join(phases)}"
    )
    _check_writes(driver, killed_at, back_at)
    await _check_stored(engine, driver)
    await _check_slots(engine, cluster)
    _check_slow(slow_runs, cluster, victim_pid)

    killed = {victim_worker, "serve1"}
    assert {n for n, up in alive.items() if not up} == killed, alive
    assert {n: codes[n] for n in killed} == {n: -signal.SIGKILL for n in killed}
    assert {n: c for n, c in codes.items() if n not in killed} == {
        n: 0 for n in codes if n not in killed
    }, {n: cluster.log(n)[-2000:] for n in codes}


async def _scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    rows = await _rows(engine, sql, **params)
    return rows[0][0] if rows else None


async def _logged(cluster: Any, name: str, text: str) -> bool:
    return text in cluster.log(name)


def _check_writes(driver: LoadDriver, killed_at: float, back_at: float) -> None:
    """Answers: all 2xx; no answer only from the killed process, from its kill on."""
    outcomes = driver.outcomes
    assert len(outcomes) >= 60, f"too little load to prove anything: {len(outcomes)} writes"
    answered = [o for o in outcomes if o.status is not None]
    statuses = Counter(o.status for o in answered)
    assert all(200 <= s < 300 for s in statuses), statuses
    unanswered = [o for o in outcomes if o.status is None]
    assert {o.process for o in unanswered} <= {1}, unanswered[:5]
    assert all(o.ended >= killed_at for o in unanswered), unanswered[:5]
    assert all(o.ended <= back_at + 1.0 for o in unanswered), unanswered[:5]
    for kind in ("device", "booking", "report"):  # each kind went through the survivors
        assert {o.process for o in answered if o.kind == kind} >= {0, 2}, kind


async def _check_stored(engine: AsyncEngine, driver: LoadDriver) -> None:
    """Every acknowledged write is in the database."""
    acked = {
        kind: {o.key for o in driver.outcomes if o.kind == kind and o.status is not None}
        for kind in ("device", "booking", "report")
    }
    names = {r[0] for r in await _rows(engine, "SELECT name FROM inventory_devices")}
    bookings = {str(r[0]) for r in await _rows(engine, "SELECT id FROM scheduler_bookings")}
    slots = await _rows(
        engine,
        "SELECT b.id FROM scheduler_bookings b JOIN scheduler_booking_devices d "
        "ON d.booking_id = b.id",
    )
    reports = {r[0] for r in await _rows(engine, "SELECT report_id FROM pricing_reports")}
    points = await _scalar(engine, "SELECT count(*) FROM pricing_price_points")
    assert acked["device"] <= names, sorted(acked["device"] - names)[:5]
    assert acked["booking"] <= bookings, sorted(acked["booking"] - bookings)[:5]
    assert acked["booking"] <= {str(r[0]) for r in slots}  # with its device held
    assert acked["report"] <= reports, sorted(acked["report"] - reports)[:5]
    assert points >= len(acked["report"])


async def _check_slots(engine: AsyncEngine, cluster: Any) -> None:
    """No periodic slot succeeded twice; the tick ran once per slot (plus lost attempts)."""
    twice = await _rows(
        engine,
        "SELECT job, scheduled_for, count(*) FROM core_job_runs "
        "WHERE state = 'succeeded' AND trigger IN ('schedule', 'retry') "
        "GROUP BY job, scheduled_for HAVING count(*) > 1",
    )
    assert twice == []
    ticks = await _rows(
        engine, "SELECT scheduled_for, state FROM core_job_runs WHERE job = 'jobstest.tick'"
    )
    succeeded = Counter(slot for slot, state in ticks if state == "succeeded")
    lost = Counter(slot for slot, state in ticks if state == "lost")
    executed = Counter(datetime.fromisoformat(r[1]) for r in cluster.records() if r[0] == "tick")
    assert len(succeeded) >= 10, len(succeeded)  # ticks went on through the chaos
    for slot in succeeded:
        assert executed[slot] == 1 + lost[slot], (slot, executed[slot], lost[slot])
    assert all(n <= 1 + lost[slot] for slot, n in executed.items()), executed


def _check_slow(slow_runs: list[Any], cluster: Any, victim_pid: int) -> None:
    """The attempt on the killed worker was lost; a retry ran to success elsewhere.

    Attempts between the two may have been lost too (a worker starved of CPU past its lease
    on a busy machine); each of them is declared lost, never left running."""
    first, last = slow_runs[0], slow_runs[-1]
    assert tuple(first[:3]) == (1, "lost", "manual")
    assert _worker_pid(first.worker) == victim_pid
    assert "lease expired" in first.error
    assert tuple(last[1:3]) == ("succeeded", "retry")
    assert _worker_pid(last.worker) != victim_pid
    assert [r.state for r in slow_runs[1:-1]] == ["lost"] * (len(slow_runs) - 2)
    assert [r.attempt for r in slow_runs] == list(range(1, len(slow_runs) + 1))
    slow = [(r[0], r[3]) for r in cluster.records() if r[0].startswith("slow")]
    assert ("slow-start", "1") in slow and ("slow-end", "1") not in slow
    assert ("slow-end", str(last.attempt)) in slow
