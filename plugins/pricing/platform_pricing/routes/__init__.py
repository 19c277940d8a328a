"""Thin HTTP layer over the pricing services, mounted under ``/api/pricing``."""

from __future__ import annotations

from fastapi import APIRouter

from platform_pricing.routes import (
    activity,
    agent_settings,
    agents,
    clients,
    decisions,
    history,
    ml_models,
    replicas,
    savings,
)

router = APIRouter()
for _module in (
    clients,
    agents,
    agent_settings,
    decisions,
    replicas,
    history,
    savings,
    activity,
    ml_models,
):
    router.include_router(_module.router)
