"""Thin HTTP layer over the deployments services, mounted under ``/api/deployments``."""

from __future__ import annotations

from fastapi import APIRouter

from platform_deployments.routes import admin, apps, mongo, templates, viewer

router = APIRouter()
for _module in (templates, apps, mongo, viewer, admin):
    router.include_router(_module.router)
