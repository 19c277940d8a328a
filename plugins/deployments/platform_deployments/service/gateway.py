"""The narrow gateway to a Kubernetes API server, on the official client's asyncio API.

Objects go in and come out as plain dicts in the API's camelCase form. Every call names the
kind; the path comes from :data:`KINDS`. Label selectors are sent, but callers filter the
answers again on our side (an emulator, or a proxy, may ignore them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from kubernetes.aio import client as k8s
from kubernetes.aio.client.exceptions import ApiException

from platform_deployments.settings import ClusterSettings

log = logging.getLogger(__name__)

FIELD_MANAGER = "platform-deployments"

Objects = list[dict[str, Any]]
"""Objects as the API returns them (an alias: ``Gateway.list`` shadows ``list`` in the class)."""


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API: prefix, plural, namespaced or not."""

    prefix: str
    plural: str
    namespaced: bool = True


KINDS: dict[str, Kind] = {
    "Namespace": Kind("/api/v1", "namespaces", namespaced=False),
    "ConfigMap": Kind("/api/v1", "configmaps"),
    "Secret": Kind("/api/v1", "secrets"),
    "Service": Kind("/api/v1", "services"),
    "ResourceQuota": Kind("/api/v1", "resourcequotas"),
    "LimitRange": Kind("/api/v1", "limitranges"),
    "Pod": Kind("/api/v1", "pods"),
    "Event": Kind("/api/v1", "events"),
    "Deployment": Kind("/apis/apps/v1", "deployments"),
    "Ingress": Kind("/apis/networking.k8s.io/v1", "ingresses"),
    "NetworkPolicy": Kind("/apis/networking.k8s.io/v1", "networkpolicies"),
    "IngressRoute": Kind("/apis/traefik.io/v1alpha1", "ingressroutes"),
}


class ClusterUnreachable(Exception):
    """The API server could not be reached, or answered with a server error."""


class ClusterError(Exception):
    """The API server refused a request (4xx other than a handled 404/409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class NotConfigured(Exception):
    """No cluster of that name is configured."""


def _path(kind: str, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    spec = KINDS[kind]
    path = spec.prefix
    if spec.namespaced:
        if namespace is None:
            raise ValueError(f"{kind} is namespaced: a namespace is needed")
        path += f"/namespaces/{namespace}"
    path += f"/{spec.plural}"
    if name is not None:
        path += f"/{name}"
    if sub is not None:
        path += f"/{sub}"
    return path


class Gateway:
    """One cluster's API, for the life of one unit of work (a job run, a request)."""

    def __init__(self, api: k8s.ApiClient, *, timeout: float = 10.0) -> None:
        self.api = api
        self.timeout = timeout
        self.writes = 0
        """Write requests sent (apply, create, patch, delete): what a no-op reconcile keeps at 0."""

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if method != "GET":
            self.writes += 1
        url_path = path + ("?" + urlencode(query) if query else "")
        try:
            m, url, hdrs, data, _ = await self.api.param_serialize(
                method, url_path, header_params=headers, body=body, auth_settings=["BearerToken"]
            )
            response = await self.api.call_api(
                m, url, header_params=hdrs, body=data, _request_timeout=self.timeout
            )
            raw = await response.read()
            status = response.status
        except ApiException as exc:
            status, raw = (
                exc.status or 0,
                (exc.body or "").encode() if isinstance(exc.body, str) else (exc.body or b""),
            )
            if status == 0:
                raise ClusterUnreachable(str(exc.reason)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ClusterUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if status >= 500:
            raise ClusterUnreachable(f"HTTP {status} from the API server")
        return status, raw

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def _fail(self, status: int, raw: bytes) -> ClusterError:
        body = self._json(raw)
        message = body.get("message") if isinstance(body, dict) else None
        return ClusterError(status, message or raw[:200].decode(errors="replace"))

    async def ping(self) -> None:
        """Raise :class:`ClusterUnreachable` unless the API server answers."""
        await self._call("GET", "/api/v1/namespaces", query={"limit": 1})

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with our field manager; create when the server answers 404."""
        kind, meta = obj["kind"], obj["metadata"]
        path = _path(kind, meta.get("namespace"), meta["name"])
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        status, raw = await self._call(
            "PATCH", path, query=query, body=obj, content_type="application/apply-patch+yaml"
        )
        if status == 404:
            status, raw = await self._call(
                "POST",
                _path(kind, meta.get("namespace")),
                query={"fieldManager": FIELD_MANAGER},
                body=obj,
                content_type="application/json",
            )
            if status == 409:  # created meanwhile: apply again
                status, raw = await self._call(
                    "PATCH",
                    path,
                    query=query,
                    body=obj,
                    content_type="application/apply-patch+yaml",
                )
        if status >= 300:
            raise self._fail(status, raw)
        result: dict[str, Any] = self._json(raw)
        return result

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object known to be absent; apply it when it exists after all (409)."""
        kind, meta = obj["kind"], obj["metadata"]
        status, raw = await self._call(
            "POST",
            _path(kind, meta.get("namespace")),
            query={"fieldManager": FIELD_MANAGER},
            body=obj,
            content_type="application/json",
        )
        if status == 409:
            return await self.apply(obj)
        if status >= 300:
            raise self._fail(status, raw)
        result: dict[str, Any] = self._json(raw)
        return result

    async def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        status, raw = await self._call("GET", _path(kind, namespace, name))
        if status == 404:
            return None
        if status >= 300:
            raise self._fail(status, raw)
        result: dict[str, Any] = self._json(raw)
        return result

    async def list(
        self, kind: str, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace whose labels include ``labels`` (checked here)."""
        query = {}
        if labels:
            query["labelSelector"] = ",".join(f"{k}={v}" for k, v in labels.items())
        status, raw = await self._call("GET", _path(kind, namespace), query=query)
        if status == 404:
            return []
        if status >= 300:
            raise self._fail(status, raw)
        items = self._json(raw).get("items") or []
        wanted = labels or {}
        return [
            item
            for item in items
            if all(
                ((item.get("metadata") or {}).get("labels") or {}).get(k) == v
                for k, v in wanted.items()
            )
        ]

    async def list_all(self, kind: str, labels: dict[str, str] | None = None) -> Objects:
        """Objects of a namespaced kind across every namespace (labels checked here)."""
        spec = KINDS[kind]
        query = {}
        if labels:
            query["labelSelector"] = ",".join(f"{k}={v}" for k, v in labels.items())
        status, raw = await self._call("GET", f"{spec.prefix}/{spec.plural}", query=query)
        if status == 404:
            return []
        if status >= 300:
            raise self._fail(status, raw)
        wanted = labels or {}
        return [
            item
            for item in self._json(raw).get("items") or []
            if all(
                ((item.get("metadata") or {}).get("labels") or {}).get(k) == v
                for k, v in wanted.items()
            )
        ]

    async def merge_patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        sub: str | None = None,
    ) -> dict[str, Any] | None:
        """A JSON merge patch (None when the object does not exist)."""
        status, raw = await self._call(
            "PATCH",
            _path(kind, namespace, name, sub),
            body=patch,
            content_type="application/merge-patch+json",
        )
        if status == 404:
            return None
        if status >= 300:
            raise self._fail(status, raw)
        result: dict[str, Any] = self._json(raw)
        return result

    async def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete one object; False when it was already gone."""
        status, raw = await self._call(
            "DELETE", _path(kind, namespace, name), query={"propagationPolicy": "Background"}
        )
        if status == 404:
            return False
        if status >= 300:
            raise self._fail(status, raw)
        return True

    async def logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None,
        tail: int | None,
        since_seconds: int | None,
    ) -> str:
        """The last lines of a pod's log."""
        query: dict[str, Any] = {}
        if container:
            query["container"] = container
        if tail is not None:
            query["tailLines"] = tail
        if since_seconds is not None:
            query["sinceSeconds"] = since_seconds
        headers_path = _path("Pod", namespace, pod, "log")
        status, raw = await self._call("GET", headers_path, query=query)
        if status == 404:
            raise ClusterError(404, f"pod {pod} not found")
        if status >= 300:
            raise self._fail(status, raw)
        return raw.decode(errors="replace")


async def configuration(cluster: ClusterSettings) -> k8s.Configuration:
    """The client configuration of a configured cluster (host, kubeconfig or in-cluster)."""
    from kubernetes.aio import config as k8s_config

    cfg = k8s.Configuration()
    if cluster.host:
        cfg.host = cluster.host
        cfg.verify_ssl = cluster.verify_ssl
        if cluster.token:
            cfg.api_key = {"BearerToken": cluster.token}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
    elif cluster.in_cluster:
        k8s_config.load_incluster_config(client_configuration=cfg)
    else:
        await k8s_config.load_kube_config(
            config_file=cluster.kubeconfig, context=cluster.context, client_configuration=cfg
        )
    return cfg


@asynccontextmanager
async def connect(cluster: ClusterSettings, *, timeout: float = 10.0) -> AsyncIterator[Gateway]:
    """A :class:`Gateway` to the cluster, closed on exit."""
    try:
        cfg = await configuration(cluster)
    except Exception as exc:
        raise ClusterUnreachable(f"cannot load the cluster's configuration: {exc}") from exc
    async with k8s.ApiClient(cfg) as api:
        yield Gateway(api, timeout=timeout)
