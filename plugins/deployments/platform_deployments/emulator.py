"""The Kubernetes emulator for tests and benches: kmock's, with namespaces working.

kmock 0.8 answers 500 on ``/api/v1/namespaces[/<name>]`` (its path parser reads
``namespaces`` as the namespace prefix of a namespaced path); :func:`patch_namespaces` maps
those paths to the cluster-scoped ``namespaces`` resource. Needs the ``test`` extra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def patch_namespaces() -> None:
    """Make kmock's parser read ``/api/v1/namespaces[/<name>]`` as the namespaces resource."""
    from kmock._internal import parsing

    if getattr(parsing.parse_path, "_deployments_patched", False):
        return
    original = parsing.parse_path

    def parse_path(path: str) -> Any:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            name = parts[3] if len(parts) == 4 else None
            return parsing.ParsedPath("", "v1", "namespaces", None, name, None)
        return original(path)

    parse_path._deployments_patched = True  # type: ignore[attr-defined]
    parsing.parse_path = parse_path


@asynccontextmanager
async def emulator() -> AsyncIterator[tuple[Any, str]]:
    """A Kubernetes emulator on loopback: ``(emulator, base URL)``."""
    import kmock

    patch_namespaces()
    async with kmock.KubernetesEmulator() as emu, kmock.Server(emu) as srv:
        yield emu, str(srv.url).rstrip("/")
