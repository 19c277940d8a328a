"""Routes: the caller's MongoDB database (provision, credentials, rotate, usage)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from platform_core import Caller, DbSession
from platform_deployments.models import MongoDatabase
from platform_deployments.routes.deps import EnvDep
from platform_deployments.schemas.mongo import MongoOut, MongoUsage
from platform_deployments.service import mongo as service
from platform_deployments.service.apps import Env
from platform_deployments.service.desired import mongo_uri

router = APIRouter(prefix="/mongo", tags=["deployments: mongo"])


def mongo_out(env: Env, row: MongoDatabase) -> MongoOut:
    """The owner's view: credentials and both URIs."""
    password = env.box.open(row.password_enc)
    return MongoOut(
        user_id=row.user_id,
        database=row.database,
        username=row.username,
        password=password,
        uri_internal=mongo_uri(env.settings, row, password, external=False),
        uri_external=mongo_uri(env.settings, row, password, external=True),
        created_at=row.created_at,
        rotated_at=row.rotated_at,
    )


def usage_out(row: MongoDatabase) -> MongoUsage:
    """A database's last sampled usage."""
    return MongoUsage(
        user_id=row.user_id,
        database=row.database,
        data_size=row.data_size,
        storage_size=row.storage_size,
        collections=row.collections,
        sampled_at=row.sampled_at,
    )


@router.post(
    "",
    response_model=MongoOut,
    status_code=201,
    responses={200: {"description": "The database existed already", "model": MongoOut}},
)
async def provision(
    session: DbSession, caller: Caller, env: EnvDep, response: Response
) -> MongoOut:
    """Create your database and MongoDB user (200 with the existing one when provisioned)."""
    row, created = await service.provision(session, env, caller.user_id)
    if not created:
        response.status_code = 200
    return mongo_out(env, row)


@router.get("", response_model=MongoOut)
async def credentials(session: DbSession, caller: Caller, env: EnvDep) -> MongoOut:
    """Your database's credentials and connection URIs."""
    return mongo_out(env, await service.get_database(session, caller.user_id))


@router.post("/rotate", response_model=MongoOut)
async def rotate(session: DbSession, caller: Caller, env: EnvDep) -> MongoOut:
    """A new password for your MongoDB user; apps using it get it at their next apply."""
    return mongo_out(env, await service.rotate(session, env, caller.user_id))


@router.get("/usage", response_model=MongoUsage)
async def usage(session: DbSession, caller: Caller, env: EnvDep) -> MongoUsage:
    """Your database's usage, sampled now (``dbStats``)."""
    return usage_out(await service.sample_usage(session, env, caller.user_id))
