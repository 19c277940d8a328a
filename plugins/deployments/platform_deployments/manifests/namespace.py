"""A user's namespace and its guard rails: Namespace, ResourceQuota, LimitRange, NetworkPolicy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from platform_deployments.manifests.labels import common_labels, metadata, stamp


@dataclass(frozen=True)
class UserLimits:
    """A user's quota as the cluster enforces it (the platform checks it before, too)."""

    max_pods: int
    cpu_millis: int
    memory_mib: int
    default_cpu_millis: int = 100
    default_memory_mib: int = 128


def namespace_object(namespace: str, user_id: int) -> dict[str, Any]:
    """The user's own Namespace, with restricted pod security enforced."""
    labels = common_labels(user_id=user_id) | {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    return stamp(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(namespace, None, labels)}
    )


def resource_quota(namespace: str, user_id: int, limits: UserLimits) -> dict[str, Any]:
    """The ResourceQuota capping the namespace at the user's quota."""
    hard = {
        "pods": str(limits.max_pods),
        "requests.cpu": f"{limits.cpu_millis}m",
        "requests.memory": f"{limits.memory_mib}Mi",
        "limits.cpu": f"{limits.cpu_millis * 2}m",
        "limits.memory": f"{limits.memory_mib * 2}Mi",
    }
    meta = metadata("user-quota", namespace, common_labels(user_id=user_id))
    return stamp(
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta, "spec": {"hard": hard}}
    )


def limit_range(namespace: str, user_id: int, limits: UserLimits) -> dict[str, Any]:
    """Defaults and ceilings for containers that name no resources."""
    item = {
        "type": "Container",
        "defaultRequest": {
            "cpu": f"{limits.default_cpu_millis}m",
            "memory": f"{limits.default_memory_mib}Mi",
        },
        "default": {
            "cpu": f"{limits.default_cpu_millis * 2}m",
            "memory": f"{limits.default_memory_mib * 2}Mi",
        },
        "max": {"cpu": f"{limits.cpu_millis * 2}m", "memory": f"{limits.memory_mib * 2}Mi"},
    }
    meta = metadata("user-limits", namespace, common_labels(user_id=user_id))
    return stamp(
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": meta, "spec": {"limits": [item]}}
    )


def network_policy(
    namespace: str, user_id: int, ingress_namespace: str, *, name: str = "user-isolation"
) -> dict[str, Any]:
    """Admit traffic to the user's pods only from the ingress controller and their own pods."""
    user_pods = {"matchLabels": {"deployments.platform.io/user-id": str(user_id)}}
    spec = {
        "podSelector": user_pods,
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {"podSelector": user_pods},
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": ingress_namespace}
                        }
                    },
                ]
            }
        ],
    }
    meta = metadata(name, namespace, common_labels(user_id=user_id))
    return stamp(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta,
            "spec": spec,
        }
    )


def build_namespace_objects(
    namespace: str, user_id: int, limits: UserLimits, *, shared: bool, ingress_namespace: str
) -> list[dict[str, Any]]:
    """Everything a user's namespace needs before their apps, in apply order.

    In the shared-namespace mode the namespace is not the user's: only a NetworkPolicy
    selecting the user's pods is built (quotas are then enforced by the platform alone).
    """
    if shared:
        return [network_policy(namespace, user_id, ingress_namespace, name=f"u{user_id}-isolation")]
    return [
        namespace_object(namespace, user_id),
        resource_quota(namespace, user_id, limits),
        limit_range(namespace, user_id, limits),
        network_policy(namespace, user_id, ingress_namespace),
    ]
