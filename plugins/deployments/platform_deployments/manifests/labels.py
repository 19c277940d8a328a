"""Labels and annotations every object of the plugin carries, and the spec hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "platform-deployments"
INSTANCE_LABEL = "app.kubernetes.io/instance"
NAME_LABEL = "app.kubernetes.io/name"
APP_ID_LABEL = "deployments.platform.io/app-id"
USER_ID_LABEL = "deployments.platform.io/user-id"
SPEC_HASH_ANNOTATION = "deployments.platform.io/spec-hash"
CHECKSUM_ANNOTATION = "deployments.platform.io/config-checksum"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"


def common_labels(
    *, user_id: int, app_id: int | None = None, instance: str | None = None, name: str | None = None
) -> dict[str, str]:
    """The labels that mark an object as ours and name its user (and app, when it has one)."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY, USER_ID_LABEL: str(user_id)}
    if app_id is not None:
        labels[APP_ID_LABEL] = str(app_id)
    if instance is not None:
        labels[INSTANCE_LABEL] = instance
    if name is not None:
        labels[NAME_LABEL] = name
    return labels


def digest(value: Any) -> str:
    """A stable SHA-256 hex digest of a JSON value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def spec_hash(obj: dict[str, Any]) -> str:
    """The hash of an object's desired content, its own spec-hash annotation left out."""
    meta = dict(obj.get("metadata") or {})
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != SPEC_HASH_ANNOTATION
    }
    meta["annotations"] = annotations
    return digest({**obj, "metadata": meta})[:32]


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with its spec-hash annotation set (the object is modified and returned)."""
    meta = obj.setdefault("metadata", {})
    meta.setdefault("annotations", {})
    meta["annotations"][SPEC_HASH_ANNOTATION] = spec_hash(obj)
    return obj


def metadata(
    name: str,
    namespace: str | None,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An object's metadata block."""
    meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["annotations"] = dict(annotations or {})
    return meta
