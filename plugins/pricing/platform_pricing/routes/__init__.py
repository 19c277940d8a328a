"""Thin HTTP layer over the pricing services, mounted under ``/api/pricing``."""

from __future__ import annotations

from fastapi import APIRouter

from platform_pricing.routes import agents, clients, decisions, history, replicas, savings

router = APIRouter()
for _module in (clients, agents, decisions, replicas, history, savings):
    router.include_router(_module.router)
