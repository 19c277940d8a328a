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


class Emulator:
    """kmock's Kubernetes emulator behind a server that can go down and come back on the
    same port, keeping its objects (the cluster down and back)."""

    def __init__(self) -> None:
        import kmock

        patch_namespaces()
        self.kmock = kmock
        self.emu: Any = kmock.KubernetesEmulator()
        self._server: Any = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The API server URL (stable across :meth:`stop` and :meth:`start`)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve (again, on the same port once it had one)."""
        kwargs: dict[str, Any] = {"port": self.port} if self.port else {}
        self._server = self.kmock.Server(self.emu, **kwargs)
        await self._server.__aenter__()
        self.port = self._server.port

    def forget_requests(self) -> int:
        """Empty kmock's request journal; how many requests it held.

        kmock matches every request against its whole journal (its filters are lazy views
        over all past requests), so a long run slows down quadratically; benches call this
        between phases. Tests keep the journal to assert on requests.
        """
        journal = self.emu._requests
        count = len(journal)
        journal.clear()
        return count

    async def stop(self) -> None:
        """Stop serving: connections are refused until :meth:`start`."""
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None


@asynccontextmanager
async def emulator() -> AsyncIterator[Emulator]:
    """A started :class:`Emulator` on loopback, stopped on exit."""
    emu = Emulator()
    await emu.emu.__aenter__()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()
        await emu.emu.__aexit__(None, None, None)
