"""Route dependencies: the plugin's runtime, and a gateway to an app's cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from platform_core import ServiceUnavailable, get_context
from platform_deployments.models import App
from platform_deployments.runtime import env_of
from platform_deployments.service.apps import Env
from platform_deployments.service.gateway import ClusterError, ClusterUnreachable, Gateway, connect
from platform_deployments.settings import CLUSTER_SETTING


def current_env(request: Request) -> Env:
    """Settings and secret box of the running platform."""
    return env_of(get_context(request))


EnvDep = Annotated[Env, Depends(current_env)]
"""A route parameter type: the plugin's settings and secret box."""


@asynccontextmanager
async def cluster_of(env: Env, app: App) -> AsyncIterator[Gateway]:
    """A gateway to the app's cluster; 503 naming the cause when it cannot be reached."""
    cluster = env.settings.clusters.get(app.cluster)
    if cluster is None:
        raise ServiceUnavailable(
            f"cluster {app.cluster!r} is not configured: see {CLUSTER_SETTING}"
        )
    try:
        async with connect(cluster, timeout=env.settings.request_timeout_seconds) as gw:
            yield gw
    except ClusterUnreachable as exc:
        raise ServiceUnavailable(f"cluster {app.cluster!r} is unreachable: {exc}") from None
    except ClusterError as exc:
        raise ServiceUnavailable(f"cluster {app.cluster!r} refused the request: {exc}") from None
