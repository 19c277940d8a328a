"""Pure builders of the Kubernetes objects of an app and of a user's namespace (no I/O).

Every builder returns a plain dict in the API's own camelCase form, with the common labels
(:func:`~platform_deployments.manifests.labels.common_labels`) and a spec-hash annotation, so
that the reconcile can tell a drifted object from an unchanged one without writing.
"""

from platform_deployments.manifests.app import AppSpec, Placement, build_app_objects
from platform_deployments.manifests.labels import (
    APP_ID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SPEC_HASH_ANNOTATION,
    USER_ID_LABEL,
    spec_hash,
)
from platform_deployments.manifests.namespace import UserLimits, build_namespace_objects

__all__ = [
    "APP_ID_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "SPEC_HASH_ANNOTATION",
    "USER_ID_LABEL",
    "AppSpec",
    "Placement",
    "UserLimits",
    "build_app_objects",
    "build_namespace_objects",
    "spec_hash",
]
