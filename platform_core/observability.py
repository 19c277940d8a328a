"""Structured logs, request ids, access logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger("platform.metrics")

# uvicorn adds ``color_message`` (the message with terminal colours) to its records.
_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON."""
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines with ``key=value`` extras, for terminals."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line plus extras."""
        when = self.formatTime(record, "%H:%M:%S")
        base = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STD_ATTRS and not k.startswith("_")
        )
        text = f"{base} {extras}" if extras else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Send logs to stderr, as JSON when stderr is not a terminal (or when asked)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs requests
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))  # one line per step


class Metrics:
    """The platform's Prometheus collectors, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "platform_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "platform_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.plugins = Gauge(
            "platform_plugins", "Plugins by state", ["state"], registry=self.registry
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency (label children cached: this is the hot path)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            if len(self._children) < 10_000:  # route templates keep the label set bounded
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


access_log = logging.getLogger("platform_core.access")


def new_request_id() -> str:
    """32 random hex digits, like ``uuid.uuid4().hex``.

    From the ``random`` module (reseeded in a forked child), not ``os.urandom``: a request id
    is a correlation key, not a secret, and the system call it saves is one of the few
    places where the request path gives up the GIL (a measurable cost on SQLite, whose
    driver runs each statement on a thread).
    """
    return f"{random.getrandbits(128):032x}"


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path with its parameters as ``{name}`` (bounded metric labels).

    ``(unmatched)`` only when no route matched (a 404). Starlette's own routes (``/docs``,
    ``/openapi.json``) set no ``route`` in the scope, only an ``endpoint``.
    """
    route = scope.get("route")
    if route is None and scope.get("endpoint") is None:
        return "(unmatched)"
    template = getattr(route, "path_format", None)
    if template and not scope.get("root_path"):  # the route's own, when paths are not mounted
        return str(template)
    values = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    path = str(scope["path"])
    if not values:
        return path
    for value, name in values.items():
        if "/" in value.strip("/"):  # a {name:path} parameter spans segments
            path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return "/".join(f"{{{values[seg]}}}" if seg in values else seg for seg in path.split("/"))


class RequestMiddleware:
    """Pure ASGI: request id (``X-Request-ID``), access log line and metrics per request."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Wrap one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        declared = 0
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                candidate = value.decode("latin-1")[:64]
                if candidate.isascii() and candidate.isprintable():
                    request_id = candidate
            elif key == b"content-length":
                declared = int(value) if value.isdigit() else 0
        request_id = request_id or new_request_id()
        if declared > self.max_body:
            await _send_problem(
                send,
                413,
                "Payload too large",
                f"the request body exceeds {self.max_body} bytes",
                request_id,
                scope["path"],
            )
            return
        received = 0
        max_body = self.max_body

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    from platform_core.errors import PayloadTooLarge

                    raise PayloadTooLarge(f"the request body exceeds {max_body} bytes")
            return message

        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, limited_receive, send_wrapper)
        except Exception:
            if started:  # the response is under way (or a framework signal): not ours
                raise
            status = 500
            # Last resort for errors that escaped the app's handlers: log once, answer 500.
            logging.getLogger("platform_core.errors").exception(
                "unhandled error", extra={"request_id": request_id, "path": scope["path"]}
            )
            await _send_problem(
                send,
                500,
                "Internal server error",
                "the server failed to handle the request; it has been logged",
                request_id,
                scope["path"],
            )
        finally:
            elapsed = time.perf_counter() - start
            template = route_template(scope)
            self.metrics.observe(scope["method"], template, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


async def _send_problem(
    send: Any, status: int, title: str, detail: str, request_id: str, path: str
) -> None:
    kind = {413: "payload-too-large", 500: "internal-error"}[status]
    body = json.dumps(
        {
            "type": f"/problems/{kind}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def plugin_metrics(ctx: Any) -> bytes:
    """The plugins' ``MetricsSource`` expositions, collected concurrently, each bounded by
    its timeout; a failing source is logged and left out of this scrape."""
    import asyncio

    async def one(plugin: str, source: Any) -> bytes:
        try:
            out = await asyncio.wait_for(source.collect(), source.timeout)
        except Exception as exc:  # a broken source must not break /metrics
            log.warning(
                "metrics source %s.%s failed: %s: %s", plugin, source.name, type(exc).__name__, exc
            )
            return b""
        data = out.encode() if isinstance(out, str) else bytes(out)
        return data if not data or data.endswith(b"\n") else data + b"\n"

    parts = await asyncio.gather(*(one(p, s) for p, s in ctx.metrics_sources))
    return b"".join(parts)
