"""The credential cache resolves a credential once for concurrent misses (single flight)."""

from __future__ import annotations

import asyncio

from platform_core.auth.cache import CredentialCache
from platform_core.auth.service import Principal

PRINCIPAL = Principal(1, "x", "member", frozenset({"inventory:read"}))


class Resolver:
    """Counts resolutions; each waits until released, then returns ``result``."""

    def __init__(self, result: Principal | None = PRINCIPAL, fail: bool = False) -> None:
        self.calls = 0
        self.result = result
        self.fail = fail
        self.release = asyncio.Event()

    async def __call__(self) -> Principal | None:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database down")
        return self.result


async def _together(cache: CredentialCache, resolver: Resolver, n: int) -> list[object]:
    tasks = [asyncio.create_task(cache.get_or_resolve("tok", resolver)) for _ in range(n)]
    await asyncio.sleep(0.01)  # every task is now waiting
    resolver.release.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_concurrent_misses_resolve_once_and_share_the_result() -> None:
    cache = CredentialCache(ttl=5)
    resolver = Resolver()
    assert await _together(cache, resolver, 16) == [PRINCIPAL] * 16
    assert resolver.calls == 1
    assert await cache.get_or_resolve("tok", resolver) is PRINCIPAL  # cached now
    assert resolver.calls == 1


async def test_a_refused_credential_is_resolved_by_every_caller_and_never_cached() -> None:
    cache = CredentialCache(ttl=5)
    resolver = Resolver(result=None)
    assert await _together(cache, resolver, 3) == [None] * 3
    assert resolver.calls == 3  # nothing cached: each one looked for itself
    assert cache.get("tok") is None


async def test_a_failed_resolution_lets_the_waiters_try_on_their_own() -> None:
    cache = CredentialCache(ttl=5)
    resolver = Resolver(fail=True)
    results = await _together(cache, resolver, 3)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert resolver.calls == 3
    assert not cache._pending


async def test_without_a_cache_every_caller_resolves_at_once() -> None:
    cache = CredentialCache(ttl=0)
    resolver = Resolver()
    assert await _together(cache, resolver, 4) == [PRINCIPAL] * 4
    assert resolver.calls == 4


async def test_an_invalidation_during_the_resolution_keeps_its_result_out_of_the_cache() -> None:
    cache = CredentialCache(ttl=5)
    resolver = Resolver()
    task = asyncio.create_task(cache.get_or_resolve("tok", resolver))
    await asyncio.sleep(0.01)
    cache.invalidate(hold=0)
    resolver.release.set()
    assert await task is PRINCIPAL
    assert cache.get("tok") is None
