"""Per-user MongoDB: a database and a user with ``readWrite`` on it, on the configured server.

The driver is PyMongo's asyncio API (``AsyncMongoClient``). Passwords are generated here
and stored sealed with the platform's secret key; the owner reads them back with the URI.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, NotFound, ServiceUnavailable, serialize, utcnow
from platform_deployments.models import App, MongoDatabase
from platform_deployments.service.apps import Env

MONGO_SETTING = "[plugins.deployments.mongo] admin_uri"
USER_EXISTS = 51003
USER_NOT_FOUND = 11


@asynccontextmanager
async def admin_client(env: Env) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """A client on the configured server (409 naming the setting when there is none)."""
    mongo = env.settings.mongo
    if not mongo.admin_uri:
        raise Conflict(f"MongoDB is not configured: set {MONGO_SETTING} in plugins.toml")
    timeout_ms = int(mongo.timeout_seconds * 1000)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo.admin_uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
    )
    try:
        yield client
    except OperationFailure:
        raise
    except PyMongoError as exc:
        raise ServiceUnavailable(f"MongoDB is unreachable: {type(exc).__name__}") from None
    finally:
        await client.close()


def names(env: Env, user_id: int) -> tuple[str, str]:
    """The database and user name of a user."""
    name = f"{env.settings.mongo.database_prefix}{user_id}"
    return name, name


def new_password() -> str:
    """A fresh 32-character URL-safe password."""
    return secrets.token_urlsafe(24)


async def _create_or_reset(
    client: AsyncMongoClient[dict[str, Any]], db: str, user: str, password: str
) -> None:
    roles = [{"role": "readWrite", "db": db}]
    try:
        await client[db].command("createUser", user, pwd=password, roles=roles)
    except OperationFailure as exc:
        if exc.code != USER_EXISTS:
            raise
        await client[db].command("updateUser", user, pwd=password, roles=roles)


async def get_database(session: AsyncSession, user_id: int) -> MongoDatabase:
    """A user's database row, or 404."""
    row = await session.get(MongoDatabase, user_id)
    if row is None:
        raise NotFound("no MongoDB database is provisioned for this user")
    return row


async def provision(session: AsyncSession, env: Env, user_id: int) -> tuple[MongoDatabase, bool]:
    """The user's database and MongoDB user, created when missing; ``(row, created)``."""
    await serialize(session, "deployments.mongo", [user_id])
    row = await session.get(MongoDatabase, user_id)
    if row is not None:
        return row, False
    db, user = names(env, user_id)
    password = new_password()
    async with admin_client(env) as client:
        try:
            await _create_or_reset(client, db, user, password)
        except OperationFailure as exc:
            raise ServiceUnavailable(f"MongoDB refused createUser: {exc.code}") from None
    row = MongoDatabase(
        user_id=user_id,
        database=db,
        username=user,
        password_enc=env.box.seal(password),
        data_size=0,
        storage_size=0,
        collections=0,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row, True


async def rotate(session: AsyncSession, env: Env, user_id: int) -> MongoDatabase:
    """A new password for the user's MongoDB user; the user's settled apps go ``pending`` so
    that the apply job gives those wired to the database the new URI."""
    await serialize(session, "deployments.mongo", [user_id])
    row = await get_database(session, user_id)
    password = new_password()
    async with admin_client(env) as client:
        try:
            await _create_or_reset(client, row.database, row.username, password)
        except OperationFailure as exc:
            raise ServiceUnavailable(f"MongoDB refused updateUser: {exc.code}") from None
    row.password_enc = env.box.seal(password)
    row.rotated_at = utcnow()
    # Apps wired to the database get the new URI from the apply job (only drifted objects,
    # here their Secret and the Deployment's checksum, are written).
    await session.execute(
        update(App)
        .where(App.user_id == user_id, App.state.in_(("synced", "out_of_sync", "error")))
        .values(
            state="pending",
            attempts=0,
            next_attempt_at=None,
            message="MongoDB password rotated: waits for the apply job",
        )
    )
    await session.flush()
    return row


async def drop(session: AsyncSession, env: Env, user_id: int) -> None:
    """Drop the user's MongoDB user and database, then the row (admins)."""
    await serialize(session, "deployments.mongo", [user_id])
    row = await get_database(session, user_id)
    async with admin_client(env) as client:
        try:
            await client[row.database].command("dropUser", row.username)
        except OperationFailure as exc:
            if exc.code != USER_NOT_FOUND:
                raise ServiceUnavailable(f"MongoDB refused dropUser: {exc.code}") from None
        await client.drop_database(row.database)
    await session.delete(row)
    await session.flush()


async def sample_usage(session: AsyncSession, env: Env, user_id: int) -> MongoDatabase:
    """``dbStats`` of the user's database, stored on its row."""
    row = await get_database(session, user_id)
    async with admin_client(env) as client:
        stats = await client[row.database].command("dbStats")
    row.data_size = int(stats.get("dataSize") or 0)
    row.storage_size = int(stats.get("storageSize") or 0)
    row.collections = int(stats.get("collections") or 0)
    row.sampled_at = utcnow()
    await session.flush()
    return row


async def sample_all(db: Any, env: Env) -> dict[str, int]:
    """The usage job: sample every database (one failure does not stop the others)."""
    async with db.session() as session:
        users = list((await session.scalars(select(MongoDatabase.user_id))).all())
    done = failed = 0
    for user_id in users:
        try:
            async with db.session() as session:
                await sample_usage(session, env, user_id)
            done += 1
        except (ServiceUnavailable, NotFound, PyMongoError):
            failed += 1
    return {"sampled": done, "failed": failed}
