"""Testing kit for plugin authors, registered as a pytest plugin (``pytest11``).

Fixtures boot the platform with a chosen set of plugins on a fresh database (a SQLite
file per test, or a fresh PostgreSQL schema when ``PLATFORM_TEST_DATABASE_URL`` is set),
with migrations applied, and give an authenticated client per role::

    @pytest.fixture
    def platform_plugins():          # override in your conftest.py
        return ["myplugin"]

    async def test_list(member_client):
        r = await member_client.get("/api/myplugin/things")
        assert r.status_code == 200

``platform_factory`` boots more platforms in one test, with in-test plugin objects
(``extra_plugins={"demo": DemoPlugin()}``), settings and core options. ``run_cli`` runs
``platformctl`` commands against the ``platform`` fixture's database::

    async def test_cli_lists(run_cli, member_client):
        result = await run_cli("myplugin", "things", "list")
        assert result.exit_code == 0, result.output
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core.app import boot, create_app
from platform_core.auth import service
from platform_core.auth.models import User
from platform_core.config import Config, CoreSettings, load_config
from platform_core.context import PlatformContext
from platform_core.events.models import EventRecord
from platform_core.migrate import downgrade, upgrade
from platform_core.notifications.models import Notification
from platform_core.webhooks.signing import verify_signature

__all__ = [
    "TEST_DATABASE_ENV",
    "TEST_WEBHOOK_ALLOW",
    "EventRecord",
    "Notification",
    "PlatformCli",
    "PlatformFactory",
    "ReceivedWebhook",
    "TestPlatform",
    "WebhookReceiver",
    "fresh_database",
    "prepared",
    "served",
    "verify_signature",
]

TEST_DATABASE_ENV = "PLATFORM_TEST_DATABASE_URL"
TEST_WEBHOOK_ALLOW = ("127.0.0.0/8", "::1")
"""``[core.webhooks] allow`` of the platforms the fixtures boot: loopback, where
:class:`WebhookReceiver` listens (a real deployment refuses loopback targets by default)."""


class TestPlatform:
    """A booted platform for one test: its context, its app and helpers to call it."""

    __test__ = False  # not a test class

    def __init__(self, ctx: PlatformContext, app: FastAPI, stack: AsyncExitStack) -> None:
        self.ctx = ctx
        self.app = app
        self._stack = stack
        self._users: dict[str, User] = {}
        self.extra_plugins: dict[str, Any] = {}
        """The in-test plugin objects it was booted with (:class:`PlatformCli` needs them)."""

    async def user(
        self, role: str = "member", username: str | None = None, password: str | None = None
    ) -> User:
        """Create a user (no password unless given, which keeps tests fast)."""
        async with self.ctx.db.session() as session:
            return await service.create_user(
                session, username or f"{role}-{uuid.uuid4().hex[:8]}", role, password
            )

    async def token(
        self, role: str = "admin", *, scopes: Iterable[str] | None = None, user: User | None = None
    ) -> str:
        """A personal API token for a new (or the given) user of ``role``."""
        async with self.ctx.db.session() as session:
            if user is None:
                user = await service.create_user(
                    session, f"{role}-{uuid.uuid4().hex[:8]}", role, None
                )
            else:
                user = await service.get_user(session, user.id)
            held = self.ctx.state["role_scopes"][user.role]
            _, secret = await service.create_token(
                session,
                user,
                scopes=list(scopes) if scopes is not None else None,
                known_scopes=frozenset(self.ctx.permissions),
                role_scopes=held,
                expires_in=None,
            )
        return secret

    async def migrate(self, plugin: str, revision: str = "heads") -> None:
        """Move one plugin's tables to ``revision`` (a revision id, ``base`` or ``heads``):
        for testing a data migration on rows written at an older revision."""
        target = next(t for t in self.ctx.migration_targets if t.plugin == plugin)
        if revision == "heads":
            await upgrade(self.ctx.db, [target])
        else:
            await downgrade(self.ctx.db, target, revision)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """An HTTP client talking to the app in-process (closed with the platform)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://testserver",
            headers=headers,
        )
        self._stack.push_async_callback(client.aclose)
        return client

    async def client_for(
        self, role: str, *, scopes: Iterable[str] | None = None
    ) -> httpx.AsyncClient:
        """A client authenticated as a new user of ``role`` (optionally with fewer scopes)."""
        return self.client(await self.token(role, scopes=scopes))

    async def run_job(self, name: str) -> Any:
        """Run the registered job ``name`` (``"<plugin>.<job>"``) once, now, and return what
        its function returned; no run row, lease or retry (the job's own logic only)."""
        from platform_core.calling import call_with_available

        try:
            spec = self.ctx.jobs[name]
        except KeyError:
            raise LookupError(f"no job {name!r}; registered: {sorted(self.ctx.jobs)}") from None
        return await call_with_available(spec.func, ctx=self.ctx, run=None)

    async def deliver_events(self, timeout: float = 10.0) -> int:
        """Dispatch and deliver every pending event now; return when none is left.

        Waits for deliveries the background loop has in flight too. Returns how many
        fan-outs and deliveries this call ran; a handler that fails is retried after its
        backoff (by the loop), not here.
        """
        from platform_core.events.dispatcher import deliver_due, fan_out, pending_work

        deadline = asyncio.get_running_loop().time() + timeout
        total = 0
        while True:
            done = await fan_out(self.ctx) + await deliver_due(self.ctx)
            total += done
            if done:
                continue
            if not await pending_work(self.ctx):
                return total
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"events still pending after {timeout}s")
            await asyncio.sleep(0.01)

    async def deliver_webhooks(self) -> int:
        """Run one webhook delivery pass now (after :meth:`deliver_events` fanned out)."""
        from platform_core.webhooks.delivery import deliver_due

        return await deliver_due(self.ctx)

    async def aclose(self) -> None:
        """Run shutdown hooks and close clients and the database."""
        await self._stack.aclose()


@dataclass(frozen=True)
class ReceivedWebhook:
    """One POST a :class:`WebhookReceiver` got: path, headers and the raw body."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> str | None:
        """The ``Platform-Event`` header: the event's name."""
        return self.headers.get("Platform-Event")

    def json(self) -> Any:
        """The body (the event envelope) parsed as JSON."""
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 for tests: records every POST, answers 200."""

    requests: list[ReceivedWebhook] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        """Serve on a free loopback port in a daemon thread."""
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(ReceivedWebhook(self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    @property
    def url(self) -> str:
        """The URL to register as the webhook's target."""
        assert self._server is not None, "receiver not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def named(self, event: str) -> list[ReceivedWebhook]:
        """The deliveries of the event ``event``, in arrival order."""
        return [r for r in self.requests if r.event == event]

    def events(self) -> list[str]:
        """The event names received, in arrival order."""
        return [r.event or "" for r in self.requests]

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


async def _fresh_schema(server_url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_async_engine(server_url)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await engine.dispose()

    async def drop() -> None:
        eng = create_async_engine(server_url)
        async with eng.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await eng.dispose()

    return schema, drop


PlatformFactory = Callable[..., Awaitable[TestPlatform]]


LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
"""The server :func:`fresh_database` uses when ``PLATFORM_TEST_DATABASE_URL`` is unset."""


@asynccontextmanager
async def fresh_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database, removed afterwards.

    ``backend`` is ``sqlite`` (a file in ``directory``) or ``postgresql`` (a new database on
    the server of ``PLATFORM_TEST_DATABASE_URL``, else :data:`LOCAL_POSTGRES`). Use it for
    tests whose subprocesses need a database of their own (a real ``platformctl serve``).
    """
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        return
    server = os.environ.get(TEST_DATABASE_ENV) or LOCAL_POSTGRES
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()


@asynccontextmanager
async def served(config: Path, *, timeout: float = 30.0) -> AsyncIterator[str]:
    """Run ``platformctl serve`` with the ``plugins.toml`` at ``config`` on a free loopback
    port until the block ends; yields its base URL once ``/healthz`` answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "platformctl"), "serve", "--port", str(port)],
        env={**os.environ, "PLATFORM_CONFIG": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    if (await client.get(base + "/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    error = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"platformctl serve exited: {error}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"platformctl serve did not answer within {timeout}s")
                await asyncio.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)  # stop without SIGTERM's drain ([core.shutdown])
        proc.wait(10)


@asynccontextmanager
async def prepared(config: Path) -> AsyncIterator[TestPlatform]:
    """The platform ``config`` (a ``plugins.toml``) describes, migrated, not started: to put
    users, tokens and data in a database before :func:`served` serves it. Its database
    connections are closed at the end of the block."""
    ctx = boot(load_config(config))
    await upgrade(ctx.db, ctx.migration_targets)
    stack = AsyncExitStack()
    stack.push_async_callback(ctx.db.dispose)
    platform = TestPlatform(ctx, create_app(ctx), stack)
    try:
        yield platform
    finally:
        await platform.aclose()


@pytest.fixture
async def platform_factory(tmp_path: Path) -> AsyncIterator[PlatformFactory]:
    """Boot platforms: ``await platform_factory(enabled=[...], settings={...}, ...)``.

    Arguments: ``enabled`` (installed plugins to enable), ``settings`` (``{plugin: table}``),
    ``extra_plugins`` (``{name: plugin object}``), ``core`` (``[core]`` keys),
    ``migrate`` (apply migrations, default True), ``start`` (run startup hooks, default True).
    Webhooks may target loopback (:data:`TEST_WEBHOOK_ALLOW`) unless ``core["webhooks"]``
    has its own ``allow``.
    """
    closers: list[Callable[[], Awaitable[None]]] = []
    count = 0

    async def factory(
        *,
        enabled: Iterable[str] = (),
        settings: dict[str, dict[str, Any]] | None = None,
        extra_plugins: dict[str, Any] | None = None,
        core: dict[str, Any] | None = None,
        migrate: bool = True,
        start: bool = True,
        database_url: str | None = None,
        schema: str | None = None,
    ) -> TestPlatform:
        nonlocal count
        count += 1
        core_options = {"secret_key": "test-secret-key-" + "x" * 32, "log_format": "text"} | dict(
            core or {}
        )
        webhooks = core_options.get("webhooks")
        if webhooks is None or isinstance(webhooks, dict):
            # Test receivers listen on loopback: allow it unless the test says otherwise.
            core_options["webhooks"] = {"allow": list(TEST_WEBHOOK_ALLOW)} | dict(webhooks or {})
        server = os.environ.get(TEST_DATABASE_ENV)
        if database_url is None and server:
            schema, drop = await _fresh_schema(server)
            closers.append(drop)
            database_url = server
        elif database_url is None:
            database_url = f"sqlite+aiosqlite:///{tmp_path / f'platform-{count}.db'}"
        core_options["database_url"] = database_url
        config = Config(
            path=tmp_path / "plugins.toml",
            core=CoreSettings(**core_options),
            enabled=list(enabled),
            plugin_tables=dict(settings or {}),
        )
        ctx = boot(config, extra_plugins=extra_plugins, schema=schema)
        if migrate:
            await upgrade(ctx.db, ctx.state["migration_targets"])
        app = create_app(ctx)
        stack = AsyncExitStack()
        stack.push_async_callback(ctx.db.dispose)
        if start:
            await stack.enter_async_context(app.router.lifespan_context(app))
        platform = TestPlatform(ctx, app, stack)
        platform.extra_plugins = dict(extra_plugins or {})
        closers.append(platform.aclose)
        return platform

    yield factory
    for close in reversed(closers):
        await close()


@pytest.fixture
def platform_plugins() -> list[str]:
    """Installed plugins the ``platform`` fixture enables; override in your conftest."""
    return []


@pytest.fixture
def platform_settings() -> dict[str, dict[str, Any]]:
    """``[plugins.<name>]`` tables for the ``platform`` fixture; override as needed."""
    return {}


@pytest.fixture
def platform_extra_plugins() -> dict[str, Any]:
    """In-test plugin objects the ``platform`` fixture registers; override as needed."""
    return {}


@pytest.fixture
async def platform(
    platform_factory: PlatformFactory,
    platform_plugins: list[str],
    platform_settings: dict[str, dict[str, Any]],
    platform_extra_plugins: dict[str, Any],
) -> TestPlatform:
    """A started platform with ``platform_plugins`` enabled and migrations applied."""
    return await platform_factory(
        enabled=platform_plugins, settings=platform_settings, extra_plugins=platform_extra_plugins
    )


@pytest.fixture
async def admin_client(platform: TestPlatform) -> httpx.AsyncClient:
    """A client authenticated as a new admin."""
    return await platform.client_for("admin")


@pytest.fixture
async def operator_client(platform: TestPlatform) -> httpx.AsyncClient:
    """A client authenticated as a new operator."""
    return await platform.client_for("operator")


@pytest.fixture
async def member_client(platform: TestPlatform) -> httpx.AsyncClient:
    """A client authenticated as a new member."""
    return await platform.client_for("member")


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A running :class:`WebhookReceiver` on loopback, closed after the test."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.close()


def _schema_database(url: Any, schema: str) -> Callable[..., Any]:
    """A ``Database`` factory that puts connections to ``url`` in ``schema``."""
    from platform_core.db import Database

    def database(target: Any, **kwargs: Any) -> Database:
        if kwargs.get("schema") is None and make_url(str(target)) == url:
            kwargs["schema"] = schema
        return Database(target, **kwargs)

    return database


class PlatformCli:
    """Runs the installed ``platformctl`` in-process against a :class:`TestPlatform`'s database.

    The command sees what the platform was booted with: its database (the same SQLite file,
    or on PostgreSQL the same per-test schema), enabled plugins, ``[plugins.<name>]``
    settings and secret key, through a ``plugins.toml`` of its own. In-test plugin objects
    (``extra_plugins``) are installed for the command as entry points of a throw-away
    distribution on ``sys.path``. Each call returns click's ``Result`` (``exit_code``,
    ``stdout``, ``stderr``, ``output``, ``exception``); the CLI runs its own event loop, so
    ``await cli(...)`` runs it in a worker thread.
    """

    def __init__(
        self, platform: TestPlatform, directory: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.platform = platform
        self.config = directory / "platformctl.toml"
        self._write_config()
        self._install_extras(directory / "cli-site", monkeypatch)
        if platform.ctx.db.schema:  # the CLI boots its own Database: keep it in this schema
            monkeypatch.setattr(
                "platform_core.app.Database",
                _schema_database(platform.ctx.db.url, platform.ctx.db.schema),
            )

    def _write_config(self) -> None:
        import tomlkit

        ctx = self.platform.ctx
        core = {
            "database_url": ctx.db.url.render_as_string(hide_password=False),
            "secret_key": ctx.secret_key,
            "log_format": "text",
            "background": False,
        }
        enabled = list(dict.fromkeys([*ctx.config.enabled, *self.platform.extra_plugins]))
        plugins: dict[str, Any] = {"enabled": enabled}
        plugins.update({k: v for k, v in ctx.config.plugin_tables.items() if v})
        self.config.write_text(tomlkit.dumps({"core": core, "plugins": plugins}), "utf-8")

    def _install_extras(self, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from platform_core.manager import ENTRY_POINT_GROUP

        if not self.platform.extra_plugins:
            return
        site.mkdir(parents=True, exist_ok=True)
        lines = [f"[{ENTRY_POINT_GROUP}]"]
        for name, obj in self.platform.extra_plugins.items():
            module = f"_platform_testing_cli_{name}_{uuid.uuid4().hex[:8]}"
            monkeypatch.setitem(sys.modules, module, obj)
            lines.append(f"{name} = {module}")
        info = site / "platform_testing_cli_extras-0.0.0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: platform-testing-cli-extras\nVersion: 0.0.0\n"
        )
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(site))

    def invoke(self, *args: str, input: str | None = None) -> Any:
        """Run ``platformctl ARGS`` now (blocking); returns click's ``Result``."""
        from importlib.metadata import entry_points

        import click
        from click.testing import CliRunner

        (script,) = entry_points(group="console_scripts", name="platformctl")
        main = script.load()

        @click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
        @click.argument("argv", nargs=-1, type=click.UNPROCESSED)
        def console(argv: tuple[str, ...]) -> None:
            saved = sys.argv
            sys.argv = ["platformctl", *argv]
            try:
                main()
            finally:
                sys.argv = saved

        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PLATFORM")}
        env |= {"PLATFORM_CONFIG": str(self.config), "COLUMNS": "200"}
        return CliRunner().invoke(console, list(args), input=input, env=env)

    async def __call__(self, *args: str, input: str | None = None) -> Any:
        """Run ``platformctl ARGS`` in a worker thread; returns click's ``Result``."""
        return await asyncio.to_thread(self.invoke, *args, input=input)


@pytest.fixture
def run_cli(platform: TestPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PlatformCli:
    """``await run_cli("myplugin", "cmd", ...)``: ``platformctl`` on the ``platform``'s database."""
    return PlatformCli(platform, tmp_path, monkeypatch)


@pytest.fixture
def anon_client(platform: TestPlatform) -> httpx.AsyncClient:
    """A client with no credentials."""
    return platform.client()
