"""Payment providers: which exist and whether they are configured."""

from __future__ import annotations

from fastapi import APIRouter, Request

from platform_core import get_context
from platform_payments.schemas.providers import ProviderOut
from platform_payments.service.providers import list_providers

router = APIRouter()


@router.get("/providers")
async def get_providers(request: Request) -> list[ProviderOut]:
    """Every provider, and why one cannot take payments (never its credentials)."""
    return [ProviderOut(**vars(p)) for p in list_providers(get_context(request))]
