"""RFC 9457 problem+json: one place turns every error into the same shape."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Awaitable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from platform_core.errors import PlatformError, exception_chain
from platform_core.types import MAX_JSON_DEPTH, json_too_deep

log = logging.getLogger("platform_core.errors")

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_TYPES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; ``extra`` members are added to the body."""
    body: dict[str, Any] = {
        "type": type_ or f"/problems/{_TYPES.get(status, 'bad-request')}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _printable(name: str) -> str:
    """A field name (a map key can be any text) with control characters escaped as \\uXXXX."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", name)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [_printable(str(p)) for p in err.get("loc", ())]
        errors.append(
            {
                "field": ".".join(loc[1:]) or (loc[0] if loc else ""),
                "in": loc[0] if loc else "body",
                "message": err.get("msg", "invalid"),
                "type": err.get("type", ""),
            }
        )
    return errors


def _invalid_json(request: Request, exc: RequestValidationError) -> JSONResponse | None:
    """A 400 saying where the body stops being JSON (FastAPI reports the offset as a field)."""
    for err in exc.errors():
        if err.get("type") != "json_invalid":
            continue
        loc = err.get("loc", ())
        pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
        reason = str((err.get("ctx") or {}).get("error") or "malformed")
        doc = exc.body if isinstance(exc.body, str | bytes) else ""
        if isinstance(doc, bytes):
            doc = doc.decode("utf-8", "replace")
        line = doc.count("\n", 0, pos) + 1
        column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
        return problem(
            request,
            400,
            f"the body is not valid JSON: {reason} at line {line}, column {column} (offset {pos})",
            type_="/problems/invalid-json",
            title="Invalid JSON",
            line=line,
            column=column,
            position=pos,
        )
    return None


class BodyTooDeep(StarletteHTTPException):
    """A JSON request body nested deeper than :data:`MAX_JSON_DEPTH` (a 400)."""

    def __init__(self) -> None:
        super().__init__(
            400,
            f"the JSON body is nested too deeply: more than {MAX_JSON_DEPTH} levels "
            "of arrays and objects",
        )


class JsonDepthLimit:
    """Pure ASGI: refuse JSON request bodies nested deeper than :data:`MAX_JSON_DEPTH`.

    One limit for every route, whether FastAPI parses the body or the route reads it raw:
    the check runs when the application receives the last chunk of a JSON body, and raises
    :class:`BodyTooDeep` there, which the error handlers turn into a 400 problem.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """Wrap ``receive`` of HTTP requests whose content type is JSON.

        Other requests go straight to the app: no coroutine of this layer stays on the
        stack (every await of the request would pass through it).
        """
        if scope["type"] != "http" or not _is_json(scope):
            return self.app(scope, receive, send)
        return self._checked(scope, receive, send)

    async def _checked(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks: list[bytes] = []

        async def checked_receive() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    too_deep = json_too_deep(b"".join(chunks))
                    chunks.clear()
                    if too_deep:
                        raise BodyTooDeep()
            return message

        await self.app(scope, checked_receive, send)


def _is_json(scope: dict[str, Any]) -> bool:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    async def platform_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PlatformError)
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return problem(
            request,
            exc.status,
            exc.detail,
            title=exc.title,
            type_=exc.type,
            headers=headers or None,
            **exc.extra,
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = (
            exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        )
        if isinstance(exc.__cause__, UnicodeDecodeError):
            detail = "the body is not valid UTF-8 text"
        elif isinstance(exc.__cause__, RecursionError):  # before the depth limit saw it
            detail = f"the JSON body is nested too deeply: more than {MAX_JSON_DEPTH} levels"
        return problem(request, exc.status_code, detail, headers=getattr(exc, "headers", None))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        bad_json = _invalid_json(request, exc)
        if bad_json is not None:
            return bad_json
        errors = _field_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors if e["field"]})) or "request"
        return problem(request, 422, f"invalid input: {fields}", errors=errors)

    async def data_error(request: Request, exc: Exception) -> JSONResponse:
        # A safety net for values the HTTP layer let through but the database refuses.
        log.warning(
            "database refused a value",
            extra={"path": request.url.path, "error": type(exc).__name__},
        )
        return problem(request, 422, "a value is out of range or malformed for storage")

    async def integrity_error(request: Request, exc: Exception) -> JSONResponse:
        log.warning("integrity error", extra={"path": request.url.path})
        return problem(request, 409, "the change conflicts with existing data")

    async def dbapi_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)
        chain = list(exception_chain(exc))
        # SQLSTATE class 22 is "data exception": out of range, NUL in text, bad encoding.
        if any(
            str(getattr(e, "sqlstate", "") or "").startswith("22")
            or type(e).__name__ == "DataError"
            or isinstance(e, OverflowError)
            for e in chain
        ):
            return await data_error(request, exc)
        if exc.connection_invalidated or any(isinstance(e, OSError) for e in chain):
            log.error("database unavailable", extra={"path": request.url.path})
            return problem(request, 503, "the database is unavailable; try again shortly")
        raise exc

    async def unreachable(request: Request, exc: Exception) -> JSONResponse:
        # Raised by drivers before SQLAlchemy can wrap them (no connection could be opened).
        log.error(
            "dependency unreachable", extra={"path": request.url.path, "error": type(exc).__name__}
        )
        return problem(request, 503, "the database is unavailable; try again shortly")

    for exc_type in (ConnectionError, TimeoutError, socket.gaierror):
        app.add_exception_handler(exc_type, unreachable)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(OverflowError, data_error)
    app.add_exception_handler(DBAPIError, dbapi_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(PlatformError, platform_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(JsonDepthLimit)
