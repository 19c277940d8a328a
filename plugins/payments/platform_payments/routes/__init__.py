"""Thin HTTP layer over the payments services, mounted under ``/api/payments``."""

from __future__ import annotations

from fastapi import APIRouter

from platform_payments.routes import ledger, orders, providers, webhooks

router = APIRouter()
for _module in (orders, providers, webhooks, ledger):
    router.include_router(_module.router)
