"""Extension points the pricing plugin offers to other plugins (hooks ``pricing_*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from platform_core import hookspec

if TYPE_CHECKING:
    from platform_pricing.engines import DecisionEngine


@hookspec
def pricing_decision_engines() -> list[DecisionEngine]:
    """Return decision engines: objects with a ``name``, a ``description`` and ``decide``.

    ``decide(inputs)`` takes a :class:`platform_pricing.engines.DecisionInput` (a compact
    summary of the instance's pools, the on-demand price and the client's policy) and returns a
    :class:`platform_pricing.engines.Decision`; it may be ``async def``, must not do I/O and
    must answer within ``engine_budget_ms``. An engine that raises, answers an invalid
    decision or is late is replaced by the fallback engine (``rules`` unless an admin chose
    another) for that decision. Called for every
    implementation; names must be unique across all of them. The pricing plugin itself
    contributes ``rules``, ``cheapest`` and ``onnx`` (an uploaded ML model).
    """
    raise NotImplementedError  # a specification: pluggy never calls its body
