"""The plugin's runtime pieces built from the platform context: settings and secret box."""

from __future__ import annotations

from platform_core import PlatformContext
from platform_deployments.service.apps import Env
from platform_deployments.service.crypto import SecretBox
from platform_deployments.settings import DeploymentsSettings


def settings_of(ctx: PlatformContext) -> DeploymentsSettings:
    """``[plugins.deployments]`` of the running platform."""
    return ctx.settings_for("deployments", DeploymentsSettings)


def env_of(ctx: PlatformContext) -> Env:
    """Settings and the secret box keyed by the platform's secret key (cached per context)."""
    state = ctx.state.setdefault("deployments", {})
    env = state.get("env")
    if env is None or env.settings is not settings_of(ctx):
        env = Env(settings=settings_of(ctx), box=SecretBox(ctx.secret_key))
        state["env"] = env
    return env
