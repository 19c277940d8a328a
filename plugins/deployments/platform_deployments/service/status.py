"""What the cluster says about an app: rollout state, pods, events, logs (read-only)."""

from __future__ import annotations

from typing import Any

from platform_core import NotFound
from platform_deployments.manifests.labels import APP_ID_LABEL
from platform_deployments.models import App
from platform_deployments.schemas.apps import EventOut, PodOut, RolloutOut
from platform_deployments.service.gateway import Gateway

MAX_EVENTS = 50


def rollout(deployment: dict[str, Any] | None, *, stopped: bool) -> RolloutOut:
    """The rollout state from observedGeneration, replica counts and the Progressing condition."""
    if deployment is None:
        return RolloutOut(
            state="missing",
            reason=None,
            message="the Deployment does not exist",
            replicas=0,
            updated_replicas=0,
            ready_replicas=0,
            available_replicas=0,
        )
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    wanted = int(spec.get("replicas", 1))
    counts = {
        "replicas": int(status.get("replicas") or 0),
        "updated_replicas": int(status.get("updatedReplicas") or 0),
        "ready_replicas": int(status.get("readyReplicas") or 0),
        "available_replicas": int(status.get("availableReplicas") or 0),
    }
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return RolloutOut(
            state="failed",
            reason="ProgressDeadlineExceeded",
            message=progressing.get("message"),
            **counts,
        )
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return RolloutOut(
            state="progressing",
            reason="NotObservedYet",
            message="the controller has not seen the latest spec",
            **counts,
        )
    if wanted == 0 and counts["replicas"] == 0:
        return RolloutOut(
            state="stopped" if stopped else "available",
            reason="ScaledToZero",
            message=None,
            **counts,
        )
    if (
        counts["updated_replicas"] >= wanted
        and counts["available_replicas"] >= wanted
        and counts["replicas"] <= wanted
    ):
        return RolloutOut(
            state="available",
            reason=progressing.get("reason"),
            message=progressing.get("message"),
            **counts,
        )
    return RolloutOut(
        state="progressing",
        reason=progressing.get("reason") or "RollingOut",
        message=progressing.get("message"),
        **counts,
    )


def pod_out(pod: dict[str, Any]) -> PodOut:
    """A pod's phase, readiness and restarts."""
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    return PodOut(
        name=pod["metadata"]["name"],
        phase=status.get("phase") or "Unknown",
        ready=bool(statuses) and all(s.get("ready") for s in statuses),
        restarts=sum(int(s.get("restartCount") or 0) for s in statuses),
        containers=containers,
        node=(pod.get("spec") or {}).get("nodeName"),
    )


async def pods(gw: Gateway, app: App) -> list[PodOut]:
    """The app's pods (by its app-id label, checked here)."""
    items = await gw.list("Pod", app.namespace, {APP_ID_LABEL: str(app.id)})
    return sorted((pod_out(p) for p in items), key=lambda p: p.name)


async def deployment(gw: Gateway, app: App) -> dict[str, Any] | None:
    """The app's Deployment as the cluster has it."""
    return await gw.get("Deployment", app.namespace, app.base_name)


async def events(gw: Gateway, app: App, *, limit: int = MAX_EVENTS) -> list[EventOut]:
    """Recent events of the app's objects and pods, newest first."""
    pod_names = {p.name for p in await pods(gw, app)}
    ours = {app.base_name, f"{app.base_name}-env"} | pod_names
    items = await gw.list("Event", app.namespace)
    picked = []
    for ev in items:
        involved = ev.get("involvedObject") or {}
        name = involved.get("name") or ""
        if name in ours or name.startswith(app.base_name + "-"):
            picked.append(
                EventOut(
                    type=ev.get("type") or "Normal",
                    reason=ev.get("reason") or "",
                    message=ev.get("message") or "",
                    object=f"{involved.get('kind', '')}/{name}",
                    count=int(ev.get("count") or 1),
                    last_seen=ev.get("lastTimestamp") or ev.get("eventTime"),
                )
            )
    picked.sort(key=lambda e: e.last_seen or "", reverse=True)
    return picked[:limit]


async def logs(
    gw: Gateway, app: App, pod: str, *, container: str | None, tail: int, since_seconds: int | None
) -> list[str]:
    """The last lines of one of the app's pods (404 for a pod that is not the app's)."""
    if pod not in {p.name for p in await pods(gw, app)}:
        raise NotFound(f"pod {pod} is not a pod of app {app.id}")
    text = await gw.logs(
        app.namespace, pod, container=container, tail=tail, since_seconds=since_seconds
    )
    lines = text.splitlines()
    return lines[-tail:]
