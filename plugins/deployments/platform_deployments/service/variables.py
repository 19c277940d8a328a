"""Typed template variables: checking the values a user gives, keeping secret ones secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from platform_core import ValidationFailed, text_error

if TYPE_CHECKING:
    from platform_deployments.schemas.templates import TemplateSpec, Variable

MAX_VALUE_CHARS = 4096


def coerce(variable: Variable, value: Any) -> tuple[str, str | None]:
    """The value as the environment text it becomes, and why it is refused (or None)."""
    kind = variable.type
    if kind == "bool":
        if isinstance(value, bool):
            return ("true" if value else "false"), None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower(), None
        return "", "must be a boolean"
    if kind == "int":
        if isinstance(value, bool):
            return "", "must be an integer"
        if isinstance(value, int):
            return str(value), None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
            return str(int(value)), None
        return "", "must be an integer"
    if not isinstance(value, str):
        return "", "must be a string"
    if len(value) > MAX_VALUE_CHARS:
        return "", f"is longer than {MAX_VALUE_CHARS} characters"
    problem = text_error(value, multiline=True)
    if problem:
        return "", problem[1]
    if kind == "enum" and value not in (variable.choices or []):
        return "", f"must be one of {', '.join(variable.choices or [])}"
    return value, None


def resolve(
    spec: TemplateSpec,
    given: dict[str, Any],
    previous_plain: dict[str, str] | None = None,
    previous_secret: dict[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Plain and secret environment values from ``given`` over the previous values and
    defaults; a 422 names every bad, unknown or missing variable (``variables.<NAME>``)."""
    errors: list[dict[str, Any]] = []
    known = {v.name: v for v in spec.variables}
    for name in sorted(given):
        if name not in known:
            errors.append(
                {"field": f"variables.{name}", "message": "is not a variable of the template"}
            )
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for var in spec.variables:
        target = secret if var.secret else plain
        old = (previous_secret if var.secret else previous_plain) or {}
        if var.name in given and given[var.name] is not None:
            text, error = coerce(var, given[var.name])
            if error:
                errors.append({"field": f"variables.{var.name}", "message": error})
                continue
            target[var.name] = text
        elif var.name in old:
            target[var.name] = old[var.name]
        elif var.default is not None:
            target[var.name] = coerce(var, var.default)[0]
        elif var.required:
            errors.append({"field": f"variables.{var.name}", "message": "is required"})
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", errors=errors)
    return plain, secret
