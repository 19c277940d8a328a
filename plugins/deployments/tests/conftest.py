"""Fixtures of the deployments tests: a Kubernetes emulator on loopback (kmock, patched for
namespaces) as the ``test`` cluster, and the platform with background jobs off (tests run
the apply and reconcile jobs themselves)."""

from __future__ import annotations

from typing import Any

import pytest
from platform_deployments.emulator import emulator


@pytest.fixture
def platform_plugins() -> list[str]:
    """The ``platform`` fixture enables the deployments plugin."""
    return ["deployments"]


@pytest.fixture
async def kube() -> Any:
    """kmock's Kubernetes emulator on loopback (``.emu``, ``.url``, ``stop()``, ``start()``)."""
    async with emulator() as emu:
        yield emu


@pytest.fixture
def deploy_settings() -> dict[str, Any]:
    """Extra ``[plugins.deployments]`` keys a test module wants."""
    return {}


@pytest.fixture
def platform_settings(kube: Any, deploy_settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One cluster, ``test``, on the emulator; generated hosts under ``apps.test``."""
    base = {
        "clusters": {"test": {"host": kube.url}},
        "base_domain": "apps.test",
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        # generous: an emulator answering late on a loaded machine must not read as a cluster
        # that is down (tests of a down cluster stop it: refused at once, no timeout)
        "request_timeout_seconds": 15,
    }
    return {"deployments": base | deploy_settings}


@pytest.fixture
async def platform(
    platform_factory: Any, platform_plugins: list[str], platform_settings: dict[str, Any]
) -> Any:
    """The started platform without its background loop (tests run jobs explicitly)."""
    return await platform_factory(
        enabled=platform_plugins, settings=platform_settings, core={"background": False}
    )


@pytest.fixture
def run_job(platform: Any) -> Any:
    """``await run_job("apply")``: one run of a deployments job, now."""

    async def run(name: str) -> Any:
        return await platform.ctx.jobs[f"deployments.{name}"].func()

    return run


class FakeMongo:
    """State of a MongoDB server played by mockupdb: users per database, stats, dropped dbs."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every user, drop and command (a fresh server)."""
        self.users: dict[tuple[str, str], dict[str, Any]] = {}
        self.dropped: list[str] = []
        self.commands: list[tuple[str, str]] = []
        self.stats: dict[str, dict[str, int]] = {}

    def handle(self, request: Any) -> bool:
        """Answer one command the way mongod does (the subset the plugin uses)."""
        doc = request.doc
        name = next(iter(doc))
        db = (request.namespace or "admin").split(".", 1)[0]
        lowered = name.lower()
        if lowered in ("ismaster", "hello", "ping", "endsessions", "buildinfo"):
            return False  # auto_ismaster and mockupdb's defaults answer these
        self.commands.append((name, db))
        if name == "createUser":
            key = (db, doc["createUser"])
            if key in self.users:
                return bool(request.command_err(51003, f'User "{key[1]}@{db}" already exists'))
            self.users[key] = {"pwd": doc["pwd"], "roles": list(doc["roles"])}
            return bool(request.ok())
        if name == "updateUser":
            key = (db, doc["updateUser"])
            if key not in self.users:
                return bool(request.command_err(11, f"User {key[1]}@{db} not found"))
            self.users[key] = {
                "pwd": doc.get("pwd", self.users[key]["pwd"]),
                "roles": list(doc.get("roles", [])),
            }
            return bool(request.ok())
        if name == "dropUser":
            key = (db, doc["dropUser"])
            if self.users.pop(key, None) is None:
                return bool(request.command_err(11, f"User {key[1]}@{db} not found"))
            return bool(request.ok())
        if name == "usersInfo":
            found = [
                {"user": u, "db": d, "roles": v["roles"]}
                for (d, u), v in self.users.items()
                if d == db
            ]
            return bool(request.ok(users=found))
        if name == "dbStats":
            stats = self.stats.get(db, {"dataSize": 0, "storageSize": 0, "collections": 0})
            return bool(request.ok(db=db, **stats))
        if name == "dropDatabase":
            self.dropped.append(db)
            return bool(request.ok())
        return bool(request.command_err(59, f"no such command: '{name}'"))


@pytest.fixture(scope="session")
def _mongo_peer() -> Any:
    """One mockupdb server for the session (stopping one takes a second)."""
    from mockupdb import MockupDB

    fake = FakeMongo()
    server = MockupDB(auto_ismaster={"maxWireVersion": 21, "minWireVersion": 0})
    server.autoresponds(lambda request: fake.handle(request))
    server.run()
    try:
        yield fake, f"mongodb://{server.address_string}/?directConnection=true"
    finally:
        server.stop()


@pytest.fixture
def mongo_server(_mongo_peer: Any) -> Any:
    """``(fake, uri)``: a MongoDB wire-protocol server on loopback with a stateful handler,
    its state fresh for each test."""
    fake, uri = _mongo_peer
    fake.reset()
    return fake, uri
