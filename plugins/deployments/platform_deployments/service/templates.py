"""The template catalogue: versions, admin changes, retirement, YAML export and import."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, NotFound, ValidationFailed, invalid, serialize, utcnow
from platform_deployments.models import Template
from platform_deployments.schemas.templates import (
    ImportResult,
    TemplateIn,
    TemplateOut,
    TemplateSpec,
    TemplateVersionIn,
)

RESERVED_NAMES = frozenset({"export", "import"})


def template_out(row: Template) -> TemplateOut:
    """The API view of a template version."""
    return TemplateOut(
        id=row.id,
        name=row.name,
        version=row.version,
        title=row.title,
        description=row.description,
        spec=TemplateSpec.model_validate(row.spec),
        builtin=row.builtin,
        retired=row.retired_at is not None,
        created_at=row.created_at,
    )


async def latest_versions(
    session: AsyncSession, *, include_retired: bool = False
) -> list[Template]:
    """The latest version of every template, by name."""
    latest = (
        select(Template.name, func.max(Template.version).label("version"))
        .group_by(Template.name)
        .subquery()
    )
    stmt = select(Template).join(
        latest, (Template.name == latest.c.name) & (Template.version == latest.c.version)
    )
    if not include_retired:
        stmt = stmt.where(Template.retired_at.is_(None))
    return list((await session.scalars(stmt.order_by(Template.name))).all())


async def get_template(session: AsyncSession, name: str, version: int | None = None) -> Template:
    """One version of a template (the latest when ``version`` is None), or 404."""
    stmt = select(Template).where(Template.name == name)
    if version is not None:
        stmt = stmt.where(Template.version == version)
    row = await session.scalar(stmt.order_by(Template.version.desc()).limit(1))
    if row is None:
        what = f"template {name!r}" + (f" version {version}" if version is not None else "")
        raise NotFound(f"{what} does not exist")
    return row


async def versions(session: AsyncSession, name: str) -> list[Template]:
    """Every version of a template, oldest first (404 when it has none)."""
    rows = list(
        (
            await session.scalars(
                select(Template).where(Template.name == name).order_by(Template.version)
            )
        ).all()
    )
    if not rows:
        raise NotFound(f"template {name!r} does not exist")
    return rows


async def create_template(session: AsyncSession, body: TemplateIn) -> Template:
    """Version 1 of a new template; 409 when the name is taken."""
    if body.name in RESERVED_NAMES:
        raise invalid("name", f"{body.name!r} is reserved")
    await serialize(session, "deployments.template", [body.name])
    taken = await session.scalar(select(Template.id).where(Template.name == body.name).limit(1))
    if taken is not None:
        raise Conflict(
            f"template {body.name!r} exists: add a version with PUT /templates/{body.name}"
        )
    row = Template(
        name=body.name,
        version=1,
        title=body.title,
        description=body.description,
        spec=body.spec.model_dump(mode="json"),
    )
    session.add(row)
    await session.flush()
    return row


async def add_version(session: AsyncSession, name: str, body: TemplateVersionIn) -> Template:
    """A new version of a template (un-retiring it); running apps keep theirs."""
    await serialize(session, "deployments.template", [name])
    current = await get_template(session, name)
    row = Template(
        name=name,
        version=current.version + 1,
        title=body.title if body.title is not None else current.title,
        description=body.description if body.description is not None else current.description,
        spec=body.spec.model_dump(mode="json"),
        builtin=False,
    )
    session.add(row)
    await session.flush()
    return row


async def retire(session: AsyncSession, name: str) -> Template:
    """Retire a template: no new app may use it; existing apps keep running."""
    rows = await versions(session, name)
    now = utcnow()
    for row in rows:
        if row.retired_at is None:
            row.retired_at = now
    await session.flush()
    return rows[-1]


def _export_doc(row: Template) -> dict[str, Any]:
    return {"name": row.name, "title": row.title, "description": row.description, "spec": row.spec}


async def export_yaml(session: AsyncSession, name: str | None = None) -> str:
    """The latest version of every active template (or of one) as a YAML document."""
    rows = [await get_template(session, name)] if name else await latest_versions(session)
    return yaml.safe_dump({"templates": [_export_doc(r) for r in rows]}, sort_keys=False)


def parse_yaml(text: str) -> list[TemplateIn]:
    """Templates from exported YAML; a 422 names ``yaml`` or the failing entry's field."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise invalid("yaml", f"is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("templates"), list):
        raise invalid("yaml", "must be a mapping with a 'templates' list")
    result: list[TemplateIn] = []
    for index, entry in enumerate(doc["templates"]):
        try:
            result.append(TemplateIn.model_validate(entry))
        except ValidationError as exc:
            errors = [
                {
                    "field": ".".join(["templates", str(index), *map(str, e["loc"])]),
                    "message": e["msg"],
                }
                for e in exc.errors()
            ]
            raise ValidationFailed(
                f"{errors[0]['field']}: {errors[0]['message']}", errors=errors
            ) from None
    names = [t.name for t in result]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise invalid("yaml", f"templates named twice: {', '.join(dupes)}")
    return result


async def import_yaml(session: AsyncSession, text: str) -> ImportResult:
    """Create missing templates and add a version to those whose spec differs."""
    created, updated, unchanged = [], [], []
    for item in parse_yaml(text):
        if item.name in RESERVED_NAMES:
            raise invalid("yaml", f"template name {item.name!r} is reserved")
        existing = await session.scalar(
            select(Template)
            .where(Template.name == item.name)
            .order_by(Template.version.desc())
            .limit(1)
        )
        if existing is None:
            await create_template(session, item)
            created.append(item.name)
            continue
        spec = item.spec.model_dump(mode="json")
        if (
            existing.spec == spec
            and existing.title == item.title
            and existing.description == item.description
            and existing.retired_at is None
        ):
            unchanged.append(item.name)
            continue
        await add_version(
            session,
            item.name,
            TemplateVersionIn(title=item.title, description=item.description, spec=item.spec),
        )
        updated.append(item.name)
    return ImportResult(created=created, updated=updated, unchanged=unchanged)
