"""MongoDB: a user's database, credentials and usage."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class MongoOut(BaseModel):
    """The caller's database and how to connect (internal host for apps, external for tools)."""

    user_id: int
    database: str
    username: str
    password: str
    uri_internal: str
    uri_external: str
    created_at: datetime
    rotated_at: datetime | None


class MongoUsage(BaseModel):
    """``dbStats`` of a database, as last sampled."""

    user_id: int
    database: str
    data_size: int
    storage_size: int
    collections: int
    sampled_at: datetime | None


class ViewerOut(BaseModel):
    """The caller's MongoDB viewer: state, URL and its basic-auth login (owner only)."""

    user_id: int
    state: str
    namespace: str
    url: str | None
    username: str
    password: str
    started_at: datetime | None
    last_used_at: datetime | None
    stopped_at: datetime | None
