"""Routes: ML model upload, versions, activation and fallback, and the decisions of a version.

Admin only (scope ``pricing:admin``). Uploads are ``multipart/form-data``: fields ``version``,
``input_schema`` (JSON), optional ``description``, and the file ``artifact`` (ONNX).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Response, UploadFile

from platform_core import (
    DEFAULT_LIMIT,
    NO_CONTENT,
    Caller,
    DbSession,
    Forbidden,
    IdCursor,
    Limit,
    Line,
    Text,
    requires_scopes,
)
from platform_pricing import ml
from platform_pricing.models import MlModel, MlModelVersion
from platform_pricing.routes.decisions import decision_out
from platform_pricing.routes.deps import Settings, TenantDep
from platform_pricing.schemas.decisions import DecisionPage
from platform_pricing.schemas.ml_models import (
    ActivateIn,
    FallbackIn,
    FallbackOut,
    FeatureCatalogue,
    FeatureInfo,
    ModelOut,
    ModelPage,
    ModelVersionOut,
    VersionPage,
)
from platform_pricing.service import ml_models as service
from platform_pricing.service.ml_models import NAME_PATTERN, VERSION_PATTERN


async def _admin_only(tenant: TenantDep) -> None:
    if not tenant.is_admin:
        raise Forbidden("ML models are managed by admins (scope pricing:admin)")


router = APIRouter(dependencies=[Depends(_admin_only)])

ADMIN = requires_scopes("pricing:admin")
ModelName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=NAME_PATTERN, description="A model's name")
]
VersionPath = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=VERSION_PATTERN, description="A version label"),
]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The model's state forbids it (current_state: active version)"}
}


def _model_out(model: MlModel, active: str | None) -> ModelOut:
    return ModelOut(
        id=model.id,
        name=model.name,
        active_version=active,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def _version_out(model: MlModel, row: MlModelVersion) -> ModelVersionOut:
    return ModelVersionOut(
        id=row.id,
        model=model.name,
        version=row.version,
        description=row.description,
        active=row.id == model.active_version_id,
        input_schema=row.input_schema,  # type: ignore[arg-type]
        input_name=row.input_name,
        output_kind=row.output_kind,  # type: ignore[arg-type]
        opset=row.opset,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        created_by=row.created_by,
        created_at=row.created_at,
        activated_at=row.activated_at,
        rolled_back_at=row.rolled_back_at,
    )


@router.get("/ml-features", response_model=FeatureCatalogue, openapi_extra=ADMIN)
async def features() -> FeatureCatalogue:
    """The features a model's ``input_schema`` may name, and the feature types (admin)."""
    return FeatureCatalogue(
        items=[FeatureInfo(name=f.name, description=f.description) for f in ml.FEATURES.values()],
        types=list(ml.FEATURE_TYPES),
    )


@router.post(
    "/ml-models/{name}/versions",
    response_model=ModelVersionOut,
    status_code=201,
    openapi_extra=ADMIN,
    responses={
        409: {"description": "The version exists"},
        413: {"description": "The artifact is over ml_model_max_bytes"},
        415: {"description": "Not multipart/form-data"},
    },
)
async def upload_version(
    name: ModelName,
    session: DbSession,
    caller: Caller,
    settings: Settings,
    version: Annotated[str, Form(min_length=1, max_length=64, pattern=VERSION_PATTERN)],
    input_schema: Annotated[
        Text,
        Form(
            min_length=1,
            max_length=65_536,
            description='JSON: [{"name": "<feature>", "type": "float|double|int64"}, ...]',
        ),
    ],
    artifact: Annotated[UploadFile, File(description="The ONNX model (.onnx)")],
    description: Annotated[Line, Form(max_length=500)] = "",
) -> ModelVersionOut:
    """Upload a new version of model ``name`` (created on its first upload), not activated.

    Only ONNX is accepted: pickles, joblib and archives are refused (422 naming ``artifact``),
    so are files ``onnx`` cannot check or ``onnxruntime`` cannot load, and models whose input
    disagrees with ``input_schema`` (422 naming the field); 413 over the size limit; 409 for
    an existing version.
    """
    limit = settings.ml_model_max_bytes
    data = await artifact.read(limit + 1)
    row = await service.upload(
        session,
        name=name,
        version=version,
        input_schema=input_schema,
        data=data,
        max_bytes=limit,
        user_id=caller.user_id,
        description=description,
    )
    model = await service.get_model(session, name)
    return _version_out(model, row)


@router.get("/ml-models", response_model=ModelPage, openapi_extra=ADMIN)
async def list_models(
    session: DbSession, cursor: IdCursor = None, limit: Limit = DEFAULT_LIMIT
) -> ModelPage:
    """The models, in id order, with their active versions (admin)."""
    rows, nxt = await service.list_models(session, cursor=cursor, limit=limit)
    return ModelPage(items=[_model_out(m, label) for m, label in rows], next_cursor=nxt)


@router.get("/ml-models/{name}", response_model=ModelOut, openapi_extra=ADMIN)
async def get_model(name: ModelName, session: DbSession) -> ModelOut:
    """One model and its active version (admin)."""
    model = await service.get_model(session, name)
    return _model_out(model, await service.active_label(session, model))


@router.get("/ml-models/{name}/versions", response_model=VersionPage, openapi_extra=ADMIN)
async def list_versions(
    name: ModelName, session: DbSession, cursor: IdCursor = None, limit: Limit = DEFAULT_LIMIT
) -> VersionPage:
    """A model's versions, newest first, metadata only (admin)."""
    model, rows, nxt = await service.list_versions(session, name, cursor=cursor, limit=limit)
    return VersionPage(items=[_version_out(model, r) for r in rows], next_cursor=nxt)


@router.get(
    "/ml-models/{name}/versions/{version}", response_model=ModelVersionOut, openapi_extra=ADMIN
)
async def get_version(name: ModelName, version: VersionPath, session: DbSession) -> ModelVersionOut:
    """One version's metadata (admin)."""
    model, row = await service.get_version(session, name, version)
    return _version_out(model, row)


@router.get(
    "/ml-models/{name}/versions/{version}/artifact",
    response_class=Response,
    openapi_extra=ADMIN,
    responses={
        200: {
            "description": "The ONNX bytes",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def download_version(name: ModelName, version: VersionPath, session: DbSession) -> Response:
    """The version's ONNX artifact, as uploaded (admin); ``X-Content-SHA256`` is its digest."""
    row, data = await service.artifact(session, name, version)
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{version}.onnx"',
            "X-Content-SHA256": row.sha256,
        },
    )


@router.post(
    "/ml-models/{name}/activate", response_model=ModelOut, openapi_extra=ADMIN, responses=CONFLICT
)
async def activate(name: ModelName, data: ActivateIn, session: DbSession) -> ModelOut:
    """Make a version the active one (the ``onnx`` engine serves it from the next decision);
    with ``expected_active``, only if that version is active now (else 409 naming it)."""
    model = await service.activate(
        session, name, data.version, expected_active=data.expected_active
    )
    return _model_out(model, data.version)


@router.post(
    "/ml-models/{name}/fallback",
    response_model=FallbackOut,
    openapi_extra=ADMIN,
    responses=CONFLICT,
)
async def fall_back(
    name: ModelName, session: DbSession, data: FallbackIn | None = None
) -> FallbackOut:
    """Leave the active version: for ``version``, else for the version active before it
    (409 when there is none); the version left is marked rolled back and is no automatic
    fallback target again until it is activated."""
    body = data or FallbackIn()
    model, left = await service.fall_back(
        session, name, version=body.version, expected_active=body.expected_active
    )
    active = await service.active_label(session, model)
    return FallbackOut(**_model_out(model, active).model_dump(), rolled_back=left)


@router.delete(
    "/ml-models/{name}/versions/{version}",
    openapi_extra=ADMIN,
    responses=CONFLICT,
    **NO_CONTENT,
)
async def delete_version(name: ModelName, version: VersionPath, session: DbSession) -> None:
    """Delete an inactive version (409 for the active one); its decisions keep naming it."""
    await service.delete_version(session, name, version)


@router.get(
    "/ml-models/{name}/versions/{version}/decisions",
    response_model=DecisionPage,
    openapi_extra=ADMIN,
)
async def version_decisions(
    name: ModelName,
    version: VersionPath,
    session: DbSession,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> DecisionPage:
    """The decisions this version made, newest first, across clients (admin)."""
    rows, nxt = await service.decisions_of(session, name, version, cursor=cursor, limit=limit)
    return DecisionPage(items=[decision_out(r) for r in rows], next_cursor=nxt)
