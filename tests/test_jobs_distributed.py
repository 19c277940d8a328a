"""The distributed job runner: taskiq over the real Redis on 127.0.0.1:6379.

The end-to-end test starts two ``platformctl scheduler`` and three ``platformctl worker``
processes on a shared SQLite file, with the ``jobstest`` plugin (tests/jobs_plugin)
pip-installed into a temporary directory that only those subprocesses see (PYTHONPATH).
Each test uses its own Redis stream, so parallel runs do not collide. Two more real-process
tests: a worker stopped with SIGTERM hands its interrupted run to another worker at once,
and events dispatched by three ``platformctl serve`` processes on PostgreSQL run each
handler exactly once per delivery.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy

from platform_core import JobSpec, hookimpl
from platform_core.jobs import service
from platform_core.jobs.distributed import broker_target, handle_message, run_worker, send_runs

REDIS_URL = "redis://127.0.0.1:6379/0"
PLUGIN_SOURCE = Path(__file__).parent / "jobs_plugin"

CONFIG = """\
[core]
database_url = "sqlite+aiosqlite:///{db}"
secret_key = "jobs-test-secret-key-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
log_format = "text"

[core.jobs]
broker_url = "{broker}"
lease_seconds = 5
poll_seconds = 0.2

[plugins]
enabled = ["jobstest"]

[plugins.jobstest]
record_file = "{record}"
tick_ms = 500
slow_seconds = 4
"""


@pytest.fixture(scope="session")
def jobstest_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/jobs_plugin pip-installed into a directory of its own (for PYTHONPATH)."""
    root = tmp_path_factory.mktemp("jobstest")
    source = root / "src"
    shutil.copytree(PLUGIN_SOURCE, source)  # the build leaves no files in the repository
    site = root / "site"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    return site


@pytest.fixture
def stream() -> Iterator[str]:
    """A Redis stream name unique to this test (deleted afterwards)."""
    name = f"platform-test-jobs-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name)
    client.close()


class Cluster:
    """Scheduler and worker subprocesses sharing one config, database and Redis stream."""

    def __init__(self, tmp_path: Path, site: Path, broker: str) -> None:
        self.dir = tmp_path
        self.db = tmp_path / "platform.db"
        self.record = tmp_path / "record.txt"
        self.config = tmp_path / "plugins.toml"
        self.config.write_text(
            CONFIG.format(db=self.db, broker=broker, record=self.record), encoding="utf-8"
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")},
            "PLATFORM_CONFIG": str(self.config),
            "PYTHONPATH": str(site),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def platformctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a platformctl command to completion."""
        return subprocess.run(
            [sys.executable, "-m", "platformctl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``platformctl ARGS`` in the background, output to ``<name>.log``."""
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "platformctl", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        """What process ``name`` printed."""
        return (self.dir / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the shared database."""
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def records(self) -> list[list[str]]:
        """Lines the jobs appended: ``kind slot run_id attempt pid``."""
        if not self.record.exists():
            return []
        return [line.split() for line in self.record.read_text().splitlines()]

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every live process and return the exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return {name: proc.wait(timeout=30) for name, proc in self.procs.items()}

    def kill_all(self) -> None:
        """SIGKILL what is still running (cleanup after a failure)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_two_schedulers_three_workers_run_each_slot_once_and_rerun_killed_work(
    tmp_path, jobstest_site, stream
):
    cluster = Cluster(tmp_path, jobstest_site, f"{REDIS_URL}?queue={stream}")
    upgraded = cluster.platformctl("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    try:
        for i in (1, 2):
            cluster.start(f"scheduler{i}", "scheduler")
        workers = {cluster.start(f"worker{i}", "worker").pid: f"worker{i}" for i in (1, 2, 3)}

        def first_tick() -> bool:
            done = (
                "SELECT count(*) FROM core_job_runs WHERE job='jobstest.tick' AND state='succeeded'"
            )
            return cluster.query(done)[0][0] > 0

        wait_for(first_tick, 30, "the first periodic run")
        queued = cluster.platformctl("jobs", "run", "jobstest.slow")
        assert queued.returncode == 0, queued.stderr
        slow_id = int(queued.stdout.strip())

        def slow_running() -> str | None:
            rows = cluster.query(
                "SELECT worker FROM core_job_runs WHERE id=? AND state='running'", slow_id
            )
            return rows[0][0] if rows else None

        holder = wait_for(slow_running, 15, "the slow job to start")
        victim_pid = int(holder.split(":")[2])
        assert victim_pid in workers
        time.sleep(1.0)  # in the middle of its 4 s
        cluster.procs[workers[victim_pid]].send_signal(signal.SIGKILL)

        def slow_rerun() -> list[tuple[Any, ...]]:
            rows = cluster.query(
                "SELECT attempt, state, trigger, worker, error FROM core_job_runs "
                "WHERE job='jobstest.slow' ORDER BY attempt"
            )
            return rows if any(r[1] == "succeeded" for r in rows) else []

        slow_runs = wait_for(slow_rerun, 30, "the killed run to be run again")

        def thirty_slots() -> bool:
            count = (
                "SELECT count(DISTINCT scheduled_for) FROM core_job_runs "
                "WHERE job='jobstest.tick' AND state='succeeded'"
            )
            return cluster.query(count)[0][0] >= 30

        wait_for(thirty_slots, 40, "30 periodic slots")
        alive = {name: p.poll() is None for name, p in cluster.procs.items()}
        codes = cluster.stop_all()
    finally:
        cluster.kill_all()

    # Every process but the killed one was alive throughout and stopped cleanly on SIGTERM.
    victim = workers[victim_pid]
    assert {n: a for n, a in alive.items() if n != victim} == {
        n: True for n in cluster.procs if n != victim
    }
    assert codes[victim] == -signal.SIGKILL
    assert {n: c for n, c in codes.items() if n != victim} == {
        n: 0 for n in cluster.procs if n != victim
    }, {n: cluster.log(n)[-2000:] for n in cluster.procs}

    # The killed run: a lost attempt, then a succeeded retry on another worker.
    assert slow_runs[0][:3] == (1, "lost", "manual")
    assert f":{victim_pid}:" in slow_runs[0][3]
    assert "lease expired" in slow_runs[0][4]
    assert slow_runs[1][:3] == (2, "succeeded", "retry")
    assert f":{victim_pid}:" not in slow_runs[1][3]
    slow_records = [(r[0], r[3]) for r in cluster.records() if r[0].startswith("slow")]
    assert ("slow-start", "1") in slow_records and ("slow-end", "2") in slow_records
    assert ("slow-end", "1") not in slow_records

    # Periodic slots: each succeeded exactly once; executed once, plus once per lost attempt.
    ticks = cluster.query(
        "SELECT scheduled_for, attempt, state, worker FROM core_job_runs WHERE job='jobstest.tick'"
    )
    succeeded = Counter(slot for slot, _, state, _ in ticks if state == "succeeded")
    assert len(succeeded) >= 30
    assert set(succeeded.values()) == {1}
    lost = Counter(slot for slot, _, state, _ in ticks if state == "lost")
    executed = Counter(datetime.fromisoformat(r[1]) for r in cluster.records() if r[0] == "tick")
    for slot in succeeded:
        when = datetime.fromisoformat(slot).replace(tzinfo=UTC)  # SQLite keeps naive UTC
        assert executed[when] == 1 + lost[slot], slot
        assert when.microsecond % 500_000 == 0
    assert len({w for _, _, state, w in ticks if state == "succeeded"}) >= 2


def test_worker_survives_an_unreachable_broker_and_stops_on_sigterm(tmp_path, jobstest_site):
    cluster = Cluster(tmp_path, jobstest_site, "redis://127.0.0.1:1/0?queue=nowhere")
    assert cluster.platformctl("db", "upgrade").returncode == 0
    try:
        worker = cluster.start("worker", "worker")
        scheduler = cluster.start("scheduler", "scheduler")
        wait_for(lambda: "broker unavailable" in cluster.log("worker"), 20, "a broker warning")
        wait_for(lambda: "broker unavailable" in cluster.log("scheduler"), 20, "a warning")
        time.sleep(2.5)  # and it keeps retrying
        assert worker.poll() is None and scheduler.poll() is None
        assert cluster.log("worker").count("broker unavailable") >= 2
        codes = cluster.stop_all()
    finally:
        cluster.kill_all()
    assert codes == {"worker": 0, "scheduler": 0}
    assert "Traceback" not in cluster.log("worker")


def test_broker_url_queue_parameter_names_the_stream():
    assert broker_target("redis://h:6379/2?queue=q1&db=2") == ("redis://h:6379/2?db=2", "q1")
    assert broker_target("redis://h:6379/0") == ("redis://h:6379/0", "platform:jobs")


class CountingPlugin:
    """An in-test plugin whose job counts its executions."""

    def __init__(self) -> None:
        self.calls = 0

    async def count(self) -> int:
        """The job: count, then sleep a little."""
        self.calls += 1
        await asyncio.sleep(0.2)
        return self.calls

    @hookimpl
    def platform_jobs(self) -> list[JobSpec]:
        """One job that may overlap."""
        return [JobSpec("count", self.count, overlap=True)]


async def test_duplicate_message_for_one_run_executes_it_once(platform_factory):
    plugin = CountingPlugin()
    platform = await platform_factory(extra_plugins={"demo": plugin}, core={"background": False})
    run = await service.enqueue(platform.ctx, "demo.count")
    await asyncio.gather(
        handle_message(platform.ctx, run.id, "worker:a"),
        handle_message(platform.ctx, run.id, "worker:b"),
    )
    assert plugin.calls == 1
    assert (await service.get_run(platform.ctx, run.id)).state == "succeeded"


async def test_in_process_worker_runs_what_is_sent_through_redis(platform_factory, stream):
    plugin = CountingPlugin()
    platform = await platform_factory(
        extra_plugins={"demo": plugin},
        core={"background": False, "jobs": {"broker_url": f"{REDIS_URL}?queue={stream}"}},
    )
    ctx = platform.ctx
    runs = [await service.enqueue(ctx, "demo.count") for _ in range(3)]
    assert await send_runs(ctx, [r.id for r in runs]) == 3
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(ctx, stop))
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            states = [(await service.get_run(ctx, r.id)).state for r in runs]
            if states == ["succeeded"] * 3:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    assert states == ["succeeded"] * 3
    assert plugin.calls == 3
    found = await service.get_run(ctx, runs[0].id)
    assert found.worker.startswith("worker:")
    assert found.finished_at - found.started_at >= timedelta(seconds=0.2)


def test_stopped_worker_hands_its_interrupted_run_to_another_worker_at_once(
    tmp_path, jobstest_site, stream
):
    """SIGTERM with a short --grace: the run is recorded as interrupted and its retry is sent
    to the broker by the stopping worker itself (no scheduler runs here to re-send it)."""
    cluster = Cluster(tmp_path, jobstest_site, f"{REDIS_URL}?queue={stream}")
    assert cluster.platformctl("db", "upgrade").returncode == 0
    try:
        workers = {cluster.start(name, "worker", "--grace", "0.5"): name for name in ("w1", "w2")}
        for name in workers.values():
            wait_for(lambda n=name: "worker started" in cluster.log(n), 30, f"{name} to start")
        queued = cluster.platformctl("jobs", "run", "jobstest.slow")
        assert queued.returncode == 0, queued.stderr
        slow_id = int(queued.stdout.strip())
        running = "SELECT worker FROM core_job_runs WHERE id=? AND state='running'"
        holder = wait_for(lambda: cluster.query(running, slow_id), 15, "the slow job to start")
        first = next(p for p in workers if f":{p.pid}:" in holder[0][0])
        first.send_signal(signal.SIGTERM)  # well inside the job's 4 s
        assert first.wait(timeout=15) == 0, cluster.log(workers[first])

        def retried() -> list[tuple[Any, ...]]:
            rows = cluster.query(
                "SELECT attempt, state, trigger, worker, error, started_at, finished_at "
                "FROM core_job_runs WHERE job='jobstest.slow' ORDER BY attempt"
            )
            return rows if len(rows) == 2 and rows[1][1] == "succeeded" else []

        runs = wait_for(retried, 30, "the interrupted run to succeed on the other worker")
    finally:
        cluster.kill_all()
    assert runs[0][:3] == (1, "cancelled", "manual")
    assert "interrupted" in runs[0][4]
    assert runs[1][:3] == (2, "succeeded", "retry")
    assert f":{first.pid}:" not in runs[1][3]
    handed_over = datetime.fromisoformat(runs[1][5]) - datetime.fromisoformat(runs[0][6])
    assert handed_over < timedelta(seconds=1), handed_over


EVENTS = 300


def test_events_dispatched_by_three_serve_processes_run_each_handler_once(tmp_path, jobstest_site):
    """PostgreSQL: 300 events published while three servers dispatch them; the jobstest
    handler records each delivery: every event is handled exactly once, by several pids."""
    asyncio.run(_events_three_processes(tmp_path, jobstest_site))


async def _events_three_processes(tmp_path: Path, site: Path) -> None:
    import httpx

    from platform_core import publish
    from platform_core.db import Database
    from platform_core.testing import fresh_database

    async with fresh_database("postgresql", tmp_path) as url:
        cluster = Cluster(tmp_path, site, "")
        record = cluster.record
        cluster.config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_format = "text"\n'
            '[core.events]\npoll_seconds = 0.2\n[plugins]\nenabled = ["jobstest"]\n'
            f'[plugins.jobstest]\nrecord_file = "{record}"\n'
        )
        upgraded = cluster.platformctl("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        db = Database(url)
        try:
            ports = []
            for i in range(3):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    ports.append(s.getsockname()[1])
                cluster.start(f"serve{i}", "serve", "--port", str(ports[-1]))
            async with httpx.AsyncClient() as client:
                for port in ports:
                    await _healthy(client, f"http://127.0.0.1:{port}/healthz", cluster)
            for batch in range(EVENTS // 20):
                async with db.session() as session:
                    for i in range(20):
                        publish(
                            session, name="jobstest.thing.happened", payload={"n": batch, "i": i}
                        )
                # spread over a few poll periods: a server that polls first takes a whole
                # batch (it claims up to 200), so batches committed at once could all go
                # to one server and the sharing below would not be shown
                await asyncio.sleep(random.uniform(0.05, 0.25))
            deadline = time.monotonic() + 60
            done = "SELECT count(*) FROM core_event_deliveries WHERE state = 'succeeded'"
            while True:
                async with db.engine.connect() as conn:
                    if await conn.scalar(sqlalchemy.text(done)) == EVENTS:
                        break
                assert time.monotonic() < deadline, "the events were not all delivered"
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # a duplicate run, if any, would have time to show
            async with db.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sqlalchemy.text(
                            "SELECT attempts, count(*) FROM core_event_deliveries GROUP BY attempts"
                        )
                    )
                ).all()
        finally:
            cluster.stop_all()
            cluster.kill_all()
            await db.dispose()
    lines = [line.split() for line in record.read_text().splitlines() if line.startswith("event")]
    handled = Counter(event_id for _, event_id, _ in lines)
    assert len(handled) == EVENTS
    assert set(handled.values()) == {1}, [k for k, v in handled.items() if v > 1][:5]
    assert len({pid for _, _, pid in lines}) >= 2  # the three really shared the work
    assert dict(rows) == {1: EVENTS}


async def _healthy(client: Any, url: str, cluster: Cluster) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, {n: cluster.log(n)[-2000:] for n in cluster.procs}
        await asyncio.sleep(0.2)
