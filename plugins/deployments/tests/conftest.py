"""Fixtures of the deployments tests: a Kubernetes emulator on loopback (kmock, patched for
namespaces) as the ``test`` cluster, and the platform with background jobs off (tests run
the apply and reconcile jobs themselves)."""

from __future__ import annotations

from typing import Any

import pytest

from platform_deployments.emulator import emulator


@pytest.fixture
def platform_plugins() -> list[str]:
    """The ``platform`` fixture enables the deployments plugin."""
    return ["deployments"]


@pytest.fixture
async def kube() -> Any:
    """kmock's Kubernetes emulator serving on loopback (``.emu``, ``.url``, ``stop()``, ``start()``)."""
    async with emulator() as emu:
        yield emu


@pytest.fixture
def deploy_settings() -> dict[str, Any]:
    """Extra ``[plugins.deployments]`` keys a test module wants."""
    return {}


@pytest.fixture
def platform_settings(kube: Any, deploy_settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One cluster, ``test``, on the emulator; generated hosts under ``apps.test``."""
    base = {
        "clusters": {"test": {"host": kube.url}},
        "base_domain": "apps.test",
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "request_timeout_seconds": 3,
    }
    return {"deployments": base | deploy_settings}


@pytest.fixture
async def platform(platform_factory: Any, platform_plugins: list[str],
                   platform_settings: dict[str, Any]) -> Any:
    """The started platform without its background loop (tests run jobs explicitly)."""
    return await platform_factory(enabled=platform_plugins, settings=platform_settings,
                                  core={"background": False})


@pytest.fixture
def run_job(platform: Any) -> Any:
    """``await run_job("apply")``: one run of a deployments job, now."""

    async def run(name: str) -> Any:
        return await platform.ctx.jobs[f"deployments.{name}"].func()

    return run
