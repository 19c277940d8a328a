"""Templates: the spec of an app template (typed variables, resources, probes) and views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from platform_core import Line, Text, TextValues

TEMPLATE_NAME = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
VARIABLE_NAME = r"^[A-Z_][A-Z0-9_]{0,62}$"
IMAGE = r"^[a-z0-9][a-z0-9._/-]{0,199}(:[A-Za-z0-9._-]{1,128})?(@sha256:[a-f0-9]{64})?$"

TemplateName = Annotated[str, StringConstraints(pattern=TEMPLATE_NAME, max_length=63)]


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int) or (isinstance(value, str) and len(value) <= 4096):
        return value
    if isinstance(value, str):
        raise ValueError("is longer than 4096 characters")
    raise ValueError("must be a string, an integer or a boolean")


VariableValue = Annotated[
    Any,
    TextValues,
    AfterValidator(_scalar),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 4096},
                {"type": "integer"},
                {"type": "boolean"},
            ]
        }
    ),
]
"""A variable's value: text (checked like ``Text``, as one field), an integer or a boolean."""


class Variable(BaseModel):
    """A typed variable of a template: string, int, bool or enum; maybe required or secret."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=VARIABLE_NAME)]
    type: Literal["string", "int", "bool", "enum"] = "string"
    required: bool = False
    default: VariableValue | None = None
    secret: bool = False
    choices: list[Annotated[Line, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=100
    )
    description: Line = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> Variable:
        if self.type == "enum" and not self.choices:
            raise ValueError("an enum variable needs choices")
        if self.type != "enum" and self.choices is not None:
            raise ValueError("only an enum variable has choices")
        if self.default is not None:
            from platform_deployments.service.variables import coerce

            error = coerce(self, self.default)[1]
            if error:
                raise ValueError(f"default: {error}")
        if self.secret and self.default is not None:
            raise ValueError("a secret variable has no default")
        return self


class Resources(BaseModel):
    """Requests and limits of the app's container, in millicores and MiB."""

    model_config = ConfigDict(extra="forbid")

    cpu_request_millis: int = Field(default=100, ge=10, le=64_000)
    memory_request_mib: int = Field(default=128, ge=16, le=262_144)
    cpu_limit_millis: int = Field(default=200, ge=10, le=64_000)
    memory_limit_mib: int = Field(default=256, ge=16, le=262_144)

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        if self.cpu_limit_millis < self.cpu_request_millis:
            raise ValueError("cpu_limit_millis is below cpu_request_millis")
        if self.memory_limit_mib < self.memory_request_mib:
            raise ValueError("memory_limit_mib is below memory_request_mib")
        return self


class ProbeSpec(BaseModel):
    """An HTTP probe of the app's port."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._~/%-]{0,200}$")] = "/"
    initial_delay_seconds: int = Field(default=5, ge=0, le=3600)
    period_seconds: int = Field(default=10, ge=1, le=3600)
    failure_threshold: int = Field(default=3, ge=1, le=100)


class TemplateSpec(BaseModel):
    """What a template deploys: image, port, replicas, resources, probes and variables."""

    model_config = ConfigDict(extra="forbid")

    image: Annotated[str, StringConstraints(pattern=IMAGE)]
    port: int = Field(default=8080, ge=1, le=65535)
    replicas: int = Field(default=1, ge=0, le=100)
    resources: Resources = Resources()
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    variables: list[Variable] = Field(default_factory=list, max_length=100)
    mongo: bool = Field(default=False, description="the app gets MONGODB_URI as a Secret")

    @model_validator(mode="after")
    def _unique_variables(self) -> TemplateSpec:
        names = [v.name for v in self.variables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variables named twice: {', '.join(dupes)}")
        if self.mongo and "MONGODB_URI" in names:
            raise ValueError("MONGODB_URI is set by the platform when mongo is true")
        return self


class TemplateIn(BaseModel):
    """A new template (version 1)."""

    model_config = ConfigDict(extra="forbid")

    name: TemplateName
    title: Line = Field(default="", max_length=200)
    description: Text = Field(default="", max_length=4000)
    spec: TemplateSpec


class TemplateVersionIn(BaseModel):
    """A new version of an existing template."""

    model_config = ConfigDict(extra="forbid")

    title: Line | None = Field(default=None, max_length=200)
    description: Text | None = Field(default=None, max_length=4000)
    spec: TemplateSpec


class TemplateOut(BaseModel):
    """A template version."""

    id: int
    name: str
    version: int
    title: str
    description: str
    spec: TemplateSpec
    builtin: bool
    retired: bool
    created_at: datetime


class TemplateList(BaseModel):
    """Templates, the latest version of each."""

    items: list[TemplateOut]


class TemplateImport(BaseModel):
    """YAML text of exported templates."""

    model_config = ConfigDict(extra="forbid")

    yaml: Text = Field(max_length=1_000_000)


class ImportResult(BaseModel):
    """What an import did, by template name."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]


class TemplateExport(BaseModel):
    """Templates as YAML text."""

    yaml: str
