"""Thin HTTP layer over the scheduler's services, mounted under ``/api/scheduler``."""

from __future__ import annotations

from fastapi import APIRouter

from platform_scheduler.routes import availability, bookings, policies, power

router = APIRouter()
for _module in (bookings, availability, policies, power):
    router.include_router(_module.router)
