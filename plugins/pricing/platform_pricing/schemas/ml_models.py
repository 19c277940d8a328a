"""Pydantic models of ML models, their versions and the feature catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import IdPage
from platform_pricing.service.ml_models import VERSION_PATTERN

VersionLabel = Annotated[str, Field(min_length=1, max_length=64, pattern=VERSION_PATTERN)]
ActiveLabel = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=VERSION_PATTERN,
        description='The version the caller expects to be active ("none": no active version)',
    ),
]


class FeatureOut(BaseModel):
    """One declared input feature of a model, in the order the model reads them."""

    name: str
    type: Literal["float", "double", "int64"]


class ModelVersionOut(BaseModel):
    """A version of a model (metadata only: the artifact is downloaded separately).

    ``output_kind`` is ``scores`` (three scores: stay, switch, on-demand) or ``label``
    (0 stay, 1 switch, 2 on-demand). ``created_by`` is the uploader's user id.
    """

    model_config = ConfigDict(from_attributes=True)

    id: int
    model: str
    version: str
    description: str
    active: bool
    input_schema: list[FeatureOut]
    input_name: str
    output_kind: Literal["scores", "label"]
    opset: int
    sha256: str
    size_bytes: int
    created_by: int | None
    created_at: datetime
    activated_at: datetime | None
    rolled_back_at: datetime | None


class VersionPage(IdPage[ModelVersionOut]):
    """A page of a model's versions, newest first; pass ``next_cursor`` as ``cursor``."""


class ModelOut(BaseModel):
    """A model and its active version (null: none; the ``onnx`` engine then falls back)."""

    id: int
    name: str
    active_version: str | None
    created_at: datetime
    updated_at: datetime


class ModelPage(IdPage[ModelOut]):
    """A page of models in id order; pass ``next_cursor`` as ``cursor``."""


class ActivateIn(BaseModel):
    """Make ``version`` active; with ``expected_active`` only if that version is active now."""

    model_config = ConfigDict(extra="forbid")

    version: VersionLabel
    expected_active: ActiveLabel | None = None


class FallbackIn(BaseModel):
    """Leave the active version for ``version``, or (without it) for the previous one."""

    model_config = ConfigDict(extra="forbid")

    version: VersionLabel | None = None
    expected_active: ActiveLabel | None = None


class FallbackOut(ModelOut):
    """The model after a fallback, and the version it left (now marked rolled back)."""

    rolled_back: str


class FeatureInfo(BaseModel):
    """A feature a model may declare: computed by the engine from each decision's inputs."""

    name: str
    description: str


class FeatureCatalogue(BaseModel):
    """Every feature a model's input schema may name (a small fixed list: not paged)."""

    items: list[FeatureInfo]
    types: list[str]
