"""Settings of the deployments plugin: the ``[plugins.deployments]`` table of ``plugins.toml``.

With no ``[plugins.deployments.clusters.<name>]`` table the plugin still serves templates,
apps' stored state and quotas; creating an app then answers a problem naming that setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CLUSTER_SETTING = "[plugins.deployments.clusters.<name>]"


class ClusterSettings(BaseModel):
    """One cluster: in-cluster config, a kubeconfig (path and context), or an API URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_cluster: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    host: str | None = Field(default=None, description="API server URL (tests, proxies)")
    token: str | None = None
    verify_ssl: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> ClusterSettings:
        sources = [self.in_cluster, self.kubeconfig is not None, self.host is not None]
        if sum(sources) > 1:
            raise ValueError("give one of in_cluster, kubeconfig or host")
        return self


class QuotaSettings(BaseModel):
    """A user's default quota (admins override it per user)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_apps: int = Field(default=5, ge=0, le=10_000)
    max_replicas: int = Field(default=6, ge=0, le=10_000)
    cpu_millis: int = Field(default=2000, ge=0, le=10_000_000)
    memory_mib: int = Field(default=2048, ge=0, le=10_000_000)


class MongoSettings(BaseModel):
    """The MongoDB server users get a database on (unset: no MongoDB feature)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    admin_uri: str | None = None
    internal_host: str = "mongodb.mongodb.svc.cluster.local:27017"
    external_host: str = "mongodb.example.org:27017"
    database_prefix: str = Field(default="u", pattern=r"^[a-z][a-z0-9_]{0,15}$")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    viewer_image: str = "mongo-express:1.0.2"
    viewer_idle_seconds: int = Field(default=3600, ge=60, le=30 * 86400)


class DeploymentsSettings(BaseModel):
    """``[plugins.deployments]``: clusters, namespaces, ingress, quotas, history, MongoDB."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clusters: dict[str, ClusterSettings] = Field(default_factory=dict)
    default_cluster: str | None = None
    namespace_mode: Literal["per_user", "shared"] = "per_user"
    namespace_prefix: str = Field(default="u-", pattern=r"^[a-z][a-z0-9-]{0,20}$")
    shared_namespace: str = Field(default="apps", pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    ingress_kind: Literal["ingress", "traefik"] = "ingress"
    ingress_class: str | None = "nginx"
    ingress_namespace: str = "ingress-nginx"
    base_domain: str | None = Field(default=None, description="apps get <name>-u<user>.<domain>")
    tls: bool = True
    cert_issuer: str | None = "letsencrypt"
    traefik_cert_resolver: str | None = None
    history_limit: int = Field(default=20, ge=1, le=1000)
    allow_image_override: bool = False
    apply_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    reconcile_interval_seconds: float = Field(default=60.0, gt=0, le=86400)
    retry_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    retry_max_seconds: float = Field(default=300.0, gt=0, le=86400)
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    reconcile_lists: Literal["auto", "cluster", "namespace"] = Field(
        default="auto",
        description="how the reconcile reads: one list per kind across all namespaces "
        "(cluster), or per kind and namespace; auto: cluster in the per_user mode",
    )
    orphan_grace_seconds: int = Field(default=3600, ge=0, le=30 * 86400)
    quota: QuotaSettings = QuotaSettings()
    mongo: MongoSettings = MongoSettings()

    @model_validator(mode="after")
    def _default_exists(self) -> DeploymentsSettings:
        if self.default_cluster is not None and self.default_cluster not in self.clusters:
            raise ValueError(f"default_cluster {self.default_cluster!r} is not in clusters")
        return self

    def cluster_wide_lists(self) -> bool:
        """Whether the reconcile lists each kind once across all namespaces."""
        if self.reconcile_lists == "auto":
            return self.namespace_mode == "per_user"
        return self.reconcile_lists == "cluster"

    def cluster_name(self, wanted: str | None) -> str | None:
        """The cluster an app goes to: the named one, the default, or the only one."""
        if wanted is not None:
            return wanted
        if self.default_cluster is not None:
            return self.default_cluster
        return next(iter(sorted(self.clusters)), None)
