"""Routes: the template catalogue (everyone reads; admins change, retire, import)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from platform_core import DbSession, requires_scopes
from platform_deployments.schemas.templates import (
    TEMPLATE_NAME,
    ImportResult,
    TemplateExport,
    TemplateImport,
    TemplateIn,
    TemplateList,
    TemplateOut,
    TemplateVersionIn,
)
from platform_deployments.service import templates as service

router = APIRouter(prefix="/templates", tags=["deployments: templates"])
ADMIN = requires_scopes("deployments:admin")
NamePath = Annotated[str, Path(pattern=TEMPLATE_NAME, max_length=63)]


@router.get("", response_model=TemplateList)
async def list_templates(
    session: DbSession, include_retired: Annotated[bool, Query()] = False
) -> TemplateList:
    """The latest version of every template (retired ones on request)."""
    rows = await service.latest_versions(session, include_retired=include_retired)
    return TemplateList(items=[service.template_out(r) for r in rows])


@router.get("/export", response_model=TemplateExport)
async def export_templates(
    session: DbSession,
    name: Annotated[str | None, Query(pattern=TEMPLATE_NAME, max_length=63)] = None,
) -> TemplateExport:
    """Active templates (or one) as YAML, ready for import elsewhere."""
    return TemplateExport(yaml=await service.export_yaml(session, name))


@router.post("/import", response_model=ImportResult, openapi_extra=ADMIN)
async def import_templates(session: DbSession, body: TemplateImport) -> ImportResult:
    """Create or add versions of templates from exported YAML (admins)."""
    return await service.import_yaml(session, body.yaml)


@router.post("", response_model=TemplateOut, status_code=201, openapi_extra=ADMIN)
async def create_template(session: DbSession, body: TemplateIn) -> TemplateOut:
    """A new template at version 1 (admins); 409 when the name is taken."""
    return service.template_out(await service.create_template(session, body))


@router.get("/{name}", response_model=TemplateOut)
async def get_template(
    session: DbSession,
    name: NamePath,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> TemplateOut:
    """A template's latest version, or the one asked for."""
    return service.template_out(await service.get_template(session, name, version))


@router.get("/{name}/versions", response_model=TemplateList)
async def template_versions(session: DbSession, name: NamePath) -> TemplateList:
    """Every version of a template, oldest first."""
    return TemplateList(
        items=[service.template_out(r) for r in await service.versions(session, name)]
    )


@router.put("/{name}", response_model=TemplateOut, openapi_extra=ADMIN)
async def add_version(session: DbSession, name: NamePath, body: TemplateVersionIn) -> TemplateOut:
    """A new version of a template (admins); running apps keep theirs until redeployed."""
    return service.template_out(await service.add_version(session, name, body))


@router.post("/{name}/retire", response_model=TemplateOut, openapi_extra=ADMIN)
async def retire_template(session: DbSession, name: NamePath) -> TemplateOut:
    """Retire a template (admins): no new apps from it; running ones are untouched."""
    return service.template_out(await service.retire(session, name))
