"""ML models: upload, versions, activation and fallback, and the model the ``onnx`` engine serves.

Every change of a model's active version (activate, fall back, delete a version) locks the
model's row first (``lock_row``), so concurrent changes run one after the other and exactly one
version is active afterwards (``MlModel.active_version_id`` holds it: one per name by
construction). A change may state the version it expects to be active (``expected_active``):
it is then a compare-and-set, and a caller that lost the race gets a 409 naming the current
active version (``current_state``).

onnxruntime sessions are cached in process memory per version id and digest (ids are never
reused, on SQLite too), loaded on a version's first decision in each process, at most
:data:`CACHE_SIZE` of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    insert_ignoring,
    invalid,
    json_too_deep,
    lock_row,
    page_by_id,
    publish,
    utcnow,
)
from platform_pricing import ml
from platform_pricing.events import MlModelActivated
from platform_pricing.models import Decision, MlModel, MlModelVersion

log = logging.getLogger("platform_pricing.ml_models")

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)
VERSION_RE = re.compile(VERSION_PATTERN)
CACHE_SIZE = 16
NONE = "none"
"""``current_state`` of a model without an active version."""

_sessions: OrderedDict[tuple[int, str], ml.LoadedModel] = OrderedDict()


# -- cache ------------------------------------------------------------------------------------


def _cache_get(version_id: int, sha256: str) -> ml.LoadedModel | None:
    found = _sessions.get((version_id, sha256))
    if found is not None:
        _sessions.move_to_end((version_id, sha256))
    return found


def _cache_put(loaded: ml.LoadedModel, sha256: str) -> None:
    _sessions[(loaded.version_id, sha256)] = loaded
    _sessions.move_to_end((loaded.version_id, sha256))
    while len(_sessions) > CACHE_SIZE:
        _sessions.popitem(last=False)


def cached_versions() -> list[int]:
    """The version ids whose sessions this process holds (least recently used first)."""
    return [key[0] for key in _sessions]


def _loaded(row: MlModelVersion, name: str, session: Any) -> ml.LoadedModel:
    return ml.LoadedModel(
        row.id,
        name,
        row.version,
        tuple(row.input_schema),
        row.input_name,
        row.output_kind,
        session,
    )


# -- upload -----------------------------------------------------------------------------------


def parse_schema_text(text: str) -> list[dict[str, str]]:
    """The declared input schema from its JSON text; 422 naming ``input_schema``."""
    if json_too_deep(text.encode("utf-8", "surrogatepass")):
        raise invalid("input_schema", "nests too deeply", location="form")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid("input_schema", f"is not JSON ({exc.msg})", location="form") from exc
    try:
        return ml.parse_input_schema(value)
    except ml.ArtifactError as exc:
        raise invalid(exc.field, exc.message, location="form") from exc


async def _model_id(session: AsyncSession, name: str) -> int:
    """The id of the model called ``name``, created when missing (concurrent-safe)."""
    now = utcnow()
    await session.execute(
        insert_ignoring(session, MlModel, index_elements=["name"]).values(
            name=name, created_at=now, updated_at=now
        )
    )
    found = await session.scalar(select(MlModel.id).where(MlModel.name == name))
    assert found is not None  # inserted or already there
    return found


async def upload(
    session: AsyncSession,
    *,
    name: str,
    version: str,
    input_schema: str,
    data: bytes,
    max_bytes: int,
    user_id: int | None,
    description: str = "",
) -> MlModelVersion:
    """Store a new version of model ``name`` after checking the artifact (see
    :func:`platform_pricing.ml.check_artifact`): 413 over ``max_bytes``, 422 naming
    ``artifact`` or ``input_schema``, 409 when the version exists. Not activated."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"artifact: {len(data)} bytes is over the limit of {max_bytes} bytes "
            "([plugins.pricing] ml_model_max_bytes)"
        )
    if version.lower() == NONE:
        raise invalid("version", f"{NONE!r} is reserved (it means no active version)")
    schema = parse_schema_text(input_schema)
    try:
        # The checked session is dropped: it is cached on the version's first decision, once
        # committed (this transaction may still roll back).
        checked, _ = await asyncio.to_thread(ml.check_artifact, data, schema, max_bytes)
    except ml.ArtifactError as exc:
        raise invalid(exc.field, exc.message, location="form") from exc
    model_id = await _model_id(session, name)
    await lock_row(session, MlModel, model_id)
    taken = await session.scalar(
        select(MlModelVersion.id).where(
            MlModelVersion.model_id == model_id, MlModelVersion.version == version
        )
    )
    if taken is not None:
        raise Conflict(f"model {name} already has a version {version!r}")
    row = MlModelVersion(
        model_id=model_id,
        version=version,
        description=description,
        input_schema=schema,
        input_name=checked.input_name,
        output_kind=checked.output_kind,
        opset=checked.opset,
        sha256=checked.sha256,
        size_bytes=checked.size,
        artifact=data,
        created_by=user_id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


# -- reading ----------------------------------------------------------------------------------


async def get_model(session: AsyncSession, name: str) -> MlModel:
    """The model called ``name``, or 404."""
    row = await session.scalar(select(MlModel).where(MlModel.name == name))
    if row is None:
        raise NotFound(f"model {name!r} not found")
    return row


async def list_models(
    session: AsyncSession, *, cursor: int | None, limit: int
) -> tuple[list[tuple[MlModel, str | None]], int | None]:
    """A page of models in id order, each with its active version's label (or None)."""
    rows, nxt = await page_by_id(session, select(MlModel), MlModel.id, cursor=cursor, limit=limit)
    labels = await _labels(session, [r.active_version_id for r in rows if r.active_version_id])
    return [(r, labels.get(r.active_version_id or 0)) for r in rows], nxt


async def _labels(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    found = await session.execute(
        select(MlModelVersion.id, MlModelVersion.version).where(MlModelVersion.id.in_(ids))
    )
    return {row.id: row.version for row in found}


async def active_label(session: AsyncSession, model: MlModel) -> str | None:
    """The active version's label of ``model`` (None without one)."""
    if model.active_version_id is None:
        return None
    return (await _labels(session, [model.active_version_id])).get(model.active_version_id)


async def list_versions(
    session: AsyncSession, name: str, *, cursor: int | None, limit: int
) -> tuple[MlModel, list[MlModelVersion], int | None]:
    """A page of the versions of model ``name`` (metadata only), newest first; 404."""
    model = await get_model(session, name)
    stmt = select(MlModelVersion).where(MlModelVersion.model_id == model.id)
    rows, nxt = await page_by_id(
        session, stmt, MlModelVersion.id, cursor=cursor, limit=limit, descending=True
    )
    return model, rows, nxt


async def get_version(
    session: AsyncSession, name: str, version: str
) -> tuple[MlModel, MlModelVersion]:
    """Model ``name`` and its version ``version`` (metadata only), or 404."""
    model = await get_model(session, name)
    row = await session.scalar(
        select(MlModelVersion).where(
            MlModelVersion.model_id == model.id, MlModelVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"model {name!r} has no version {version!r}")
    return model, row


async def artifact(session: AsyncSession, name: str, version: str) -> tuple[MlModelVersion, bytes]:
    """A version's metadata and its ONNX bytes, or 404."""
    _, row = await get_version(session, name, version)
    data = await session.scalar(select(MlModelVersion.artifact).where(MlModelVersion.id == row.id))
    return row, bytes(data or b"")


async def decisions_of(
    session: AsyncSession, name: str, version: str, *, cursor: int | None, limit: int
) -> tuple[list[Decision], int | None]:
    """A page of the decisions version ``version`` of model ``name`` made, newest first."""
    _, row = await get_version(session, name, version)
    stmt = select(Decision).where(Decision.model_version_id == row.id)
    return await page_by_id(session, stmt, Decision.id, cursor=cursor, limit=limit, descending=True)


# -- changing the active version --------------------------------------------------------------


async def _locked(
    session: AsyncSession, name: str, expected_active: str | None
) -> tuple[MlModel, str | None]:
    """Model ``name`` locked, and its active version's label; 409 naming it when it is not
    ``expected_active`` (``"none"``: no active version)."""
    model_id = await session.scalar(select(MlModel.id).where(MlModel.name == name))
    model = None if model_id is None else await lock_row(session, MlModel, model_id)
    if model is None:
        raise NotFound(f"model {name!r} not found")
    current = await active_label(session, model)
    if expected_active is not None and expected_active != (current or NONE):
        state = current or NONE
        raise Conflict(
            f"model {name} has active version {state}, not {expected_active}",
            current_state=state,
        )
    return model, current


async def _version_row(session: AsyncSession, model: MlModel, version: str) -> MlModelVersion:
    row = await session.scalar(
        select(MlModelVersion).where(
            MlModelVersion.model_id == model.id, MlModelVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version!r}")
    return row


def _activate(
    session: AsyncSession,
    model: MlModel,
    row: MlModelVersion,
    now: datetime,
    previous: str | None,
    how: str,
) -> None:
    model.active_version_id = row.id
    model.updated_at = now
    row.activated_at = now
    row.rolled_back_at = None
    publish(
        session,
        MlModelActivated(model=model.name, version=row.version, previous=previous, how=how),
    )


async def activate(
    session: AsyncSession, name: str, version: str, *, expected_active: str | None = None
) -> MlModel:
    """Make ``version`` the active version of ``name`` (the previous one stays, inactive);
    404 for an unknown model or version, 409 when ``expected_active`` is not active."""
    model, current = await _locked(session, name, expected_active)
    row = await _version_row(session, model, version)
    _activate(session, model, row, utcnow(), current, "activate")
    await session.flush()
    log.info("ml model activated", extra={"model": name, "version": version})
    return model


async def fall_back(
    session: AsyncSession,
    name: str,
    *,
    version: str | None = None,
    expected_active: str | None = None,
) -> tuple[MlModel, str]:
    """Leave the active version of ``name`` for ``version``, or else for the previously
    activated version that was not itself rolled back; returns the model and the version
    left. 409 without an active version, without a previous one, or when ``expected_active``
    is not active; 404 for an unknown model or version."""
    model, current = await _locked(session, name, expected_active)
    if current is None:
        raise Conflict(f"model {name} has no active version to fall back from", current_state=NONE)
    target: MlModelVersion | None
    if version is not None:
        target = await _version_row(session, model, version)
        if target.id == model.active_version_id:
            raise Conflict(
                f"version {version} of model {name} is the active one", current_state=current
            )
    else:
        target = await session.scalar(
            select(MlModelVersion)
            .where(
                MlModelVersion.model_id == model.id,
                MlModelVersion.id != model.active_version_id,
                MlModelVersion.activated_at.is_not(None),
                MlModelVersion.rolled_back_at.is_(None),
            )
            .order_by(MlModelVersion.activated_at.desc(), MlModelVersion.id.desc())
            .limit(1)
        )
        if target is None:
            raise Conflict(
                f"model {name} has no previously active version to fall back to",
                current_state=current,
            )
    now = utcnow()
    left = await session.get(MlModelVersion, model.active_version_id)
    if left is not None:
        left.rolled_back_at = now
    _activate(session, model, target, now, current, "fallback")
    await session.flush()
    log.info("ml model fell back", extra={"model": name, "from": current, "to": target.version})
    return model, current


async def delete_version(session: AsyncSession, name: str, version: str) -> None:
    """Delete an inactive version (its decisions keep its name and label); 409 when it is
    the active one, 404 for an unknown model or version."""
    model, _ = await _locked(session, name, None)
    row = await _version_row(session, model, version)
    if row.id == model.active_version_id:
        raise Conflict(
            f"version {version} of model {name} is active: activate another one or fall back first",
            current_state=version,
        )
    await session.execute(delete(MlModelVersion).where(MlModelVersion.id == row.id))
    for key in [k for k in _sessions if k[0] == row.id]:
        del _sessions[key]


# -- serving ----------------------------------------------------------------------------------


async def bind_engine(session: AsyncSession, name: str) -> ml.BoundOnnxEngine:
    """The ``onnx`` engine bound to the active version of model ``name``, or bound to why
    there is none (then deciding raises and the fallback engine decides)."""
    found = (
        await session.execute(
            select(MlModelVersion)
            .join(MlModel, MlModel.active_version_id == MlModelVersion.id)
            .where(MlModel.name == name)
        )
    ).scalar_one_or_none()
    if found is None:
        return ml.BoundOnnxEngine(None, f"model {name!r} has no active version")
    cached = _cache_get(found.id, found.sha256)
    if cached is not None:
        return ml.BoundOnnxEngine(cached)
    data = await session.scalar(
        select(MlModelVersion.artifact).where(MlModelVersion.id == found.id)
    )
    try:
        runtime = await asyncio.to_thread(
            ml.warm_session, bytes(data or b""), found.input_schema, found.input_name
        )
    except Exception as exc:
        log.warning("ml model failed to load", extra={"model": name, "version": found.version})
        return ml.BoundOnnxEngine(
            None,
            f"model {name} {found.version} failed to load: {type(exc).__name__}",
        )
    loaded = _loaded(found, name, runtime)
    _cache_put(loaded, found.sha256)
    return ml.BoundOnnxEngine(loaded)
