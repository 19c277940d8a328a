"""Decision engines: their inputs and outputs, the rule engine, and the runner with fallback.

Pure Python (no database, no web framework): an engine sees a compact summary of an instance's
pools (current price and a few recent statistics each, built by the service from the price
history) and recommends ``stay``, ``switch`` to a pool, or ``on-demand``. Engines are offered
through the ``pricing_decision_engines`` hook; :func:`run_decision` runs the one a client chose
and falls back to the rule engine when it raises, answers nonsense or exceeds its time budget.

Prices are per instance-hour, in the currency of the price feed. Every datetime is
timezone-aware and normalised to UTC.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

log = logging.getLogger("platform_pricing.engines")

Action = Literal["stay", "switch", "on-demand"]
Lifecycle = Literal["spot", "on-demand"]
ACTIONS: tuple[Action, ...] = ("stay", "switch", "on-demand")
LIFECYCLES: tuple[Lifecycle, ...] = ("spot", "on-demand")

EPSILON = 1e-9
"""Tolerance of threshold comparisons: a saving equal to a minimum passes despite float noise."""

__all__ = [
    "ACTIONS",
    "LIFECYCLES",
    "CheapestEngine",
    "Decision",
    "DecisionEngine",
    "DecisionInput",
    "EngineResult",
    "Policy",
    "PoolState",
    "RuleEngine",
    "builtin_engines",
    "index_engines",
    "run_decision",
    "validate_decision",
]


# -- helpers ----------------------------------------------------------------------------------


def _aware_utc(value: datetime | None, name: str) -> datetime | None:
    """``value`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _price(value: float | None, name: str, *, optional: bool = True) -> float | None:
    """``value`` as a finite, non-negative float (or None when allowed)."""
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _money(value: float) -> str:
    """A price for reasons: up to six decimals, no trailing zeros (``0.0123``)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _pct(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _duration(seconds: float) -> str:
    """``3599`` -> ``59 min 59 s``; ``21600`` -> ``6 h``; negative -> ``in the future``."""
    if seconds < 0:
        return "in the future"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


# -- inputs and outputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class PoolState:
    """One spot pool (region, zone, instance type) summarised for a decision.

    ``spot_price`` is the latest price, None when no recent price is known; ``recent_avg`` and
    ``recent_max`` cover the service's recent window; ``volatility`` is stddev / average over
    that window; ``interruptions_recent`` counts the client's interruptions of the pool over
    ``interruption_rate_days``.
    """

    pool_id: int
    region: str
    zone: str
    instance_type: str
    spot_price: float | None
    recent_avg: float | None = None
    recent_max: float | None = None
    volatility: float | None = None
    last_interruption_at: datetime | None = None
    interruptions_recent: int = 0

    def __post_init__(self) -> None:
        for name in ("spot_price", "recent_avg", "recent_max", "volatility"):
            object.__setattr__(self, name, _price(getattr(self, name), name))
        object.__setattr__(
            self,
            "last_interruption_at",
            _aware_utc(self.last_interruption_at, "last_interruption_at"),
        )
        if isinstance(self.interruptions_recent, bool) or self.interruptions_recent < 0:
            raise ValueError("interruptions_recent must be an integer >= 0")

    @property
    def label(self) -> str:
        """``region/zone/instance_type``, for humans."""
        return f"{self.region}/{self.zone}/{self.instance_type}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (datetimes as ISO 8601)."""
        data = asdict(self)
        data["last_interruption_at"] = _iso(self.last_interruption_at)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolState:
        """The inverse of :meth:`to_dict`."""
        values = dict(data)
        values["last_interruption_at"] = _parse_dt(values.get("last_interruption_at"))
        return cls(**values)


@dataclass(frozen=True)
class Policy:
    """A client's anti-flapping and safety settings (the defaults suit most clients).

    - ``min_saving_percent`` / ``min_saving_per_hour``: a price-driven move must save at least
      both (percent of the current hourly cost, and absolute per hour).
    - ``min_seconds_between_switches``: no price-driven move sooner after the last switch.
      A pending interruption notice on the current pool is a safety move and ignores it.
    - ``interruption_cooldown_seconds``: a pool interrupted more recently is never a target.
    - ``allow_on_demand``: whether ``on-demand`` may be recommended at all.
    - ``max_price_ratio``: a spot price above ``on_demand_price * max_price_ratio`` is not
      worth the interruption risk: such a pool is never a target, and a current pool above
      it is left (for a cheaper eligible pool, else on-demand).
    - ``max_volatility``: pools whose volatility (stddev / average) is above it are never
      targets; None means no limit.
    """

    min_saving_percent: float = 10.0
    min_saving_per_hour: float = 0.005
    min_seconds_between_switches: int = 3600
    interruption_cooldown_seconds: int = 6 * 3600
    allow_on_demand: bool = True
    max_price_ratio: float = 1.0
    max_volatility: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "min_saving_percent",
            "min_saving_per_hour",
            "min_seconds_between_switches",
            "interruption_cooldown_seconds",
        ):
            _price(getattr(self, name), name, optional=False)
        if self.min_saving_percent > 100:
            raise ValueError("min_saving_percent must be <= 100")
        ratio = _price(self.max_price_ratio, "max_price_ratio", optional=False)
        if not ratio:
            raise ValueError("max_price_ratio must be > 0")
        _price(self.max_volatility, "max_volatility")
        if not isinstance(self.allow_on_demand, bool):
            raise ValueError("allow_on_demand must be a boolean")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """The inverse of :meth:`to_dict`; missing keys take their defaults, unknown ones fail."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown policy settings: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class DecisionInput:
    """Everything an engine may look at for one instance at one moment.

    ``pools`` are the candidate pools the service chose for the instance (same workload, the
    current pool included when on spot); ``current_pool_id`` is None only when on-demand.
    ``current_pool_interrupted`` means a termination or rebalance notice is pending.
    """

    now: datetime
    instance_id: int
    current_pool_id: int | None
    current_lifecycle: Lifecycle
    on_demand_price: float
    pools: tuple[PoolState, ...]
    last_switch_at: datetime | None = None
    current_pool_interrupted: bool = False
    policy: Policy = field(default_factory=Policy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "now", _aware_utc(self.now, "now"))
        object.__setattr__(
            self, "last_switch_at", _aware_utc(self.last_switch_at, "last_switch_at")
        )
        object.__setattr__(self, "pools", tuple(self.pools))
        if self.current_lifecycle not in LIFECYCLES:
            raise ValueError(f"current_lifecycle must be one of {LIFECYCLES}")
        price = _price(self.on_demand_price, "on_demand_price", optional=False)
        if not price:
            raise ValueError("on_demand_price must be > 0")
        object.__setattr__(self, "on_demand_price", price)
        ids = [pool.pool_id for pool in self.pools]
        if len(set(ids)) != len(ids):
            raise ValueError("pool ids must be unique")
        if self.current_lifecycle == "spot":
            if self.current_pool_id is None:
                raise ValueError("current_pool_id is required on spot")
            if self.current_pool_id not in ids:
                raise ValueError(f"current pool {self.current_pool_id} is not among the pools")

    def pool(self, pool_id: int | None) -> PoolState | None:
        """The pool with that id, or None."""
        return next((p for p in self.pools if p.pool_id == pool_id), None)

    @property
    def current_pool(self) -> PoolState | None:
        """The pool the instance runs in (None on on-demand)."""
        return self.pool(self.current_pool_id) if self.current_lifecycle == "spot" else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every input, for storage beside the decision."""
        return {
            "now": _iso(self.now),
            "instance_id": self.instance_id,
            "current_pool_id": self.current_pool_id,
            "current_lifecycle": self.current_lifecycle,
            "on_demand_price": self.on_demand_price,
            "pools": [pool.to_dict() for pool in self.pools],
            "last_switch_at": _iso(self.last_switch_at),
            "current_pool_interrupted": self.current_pool_interrupted,
            "policy": self.policy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionInput:
        """The inverse of :meth:`to_dict` (to replay a stored decision)."""
        values = dict(data)
        values["now"] = _parse_dt(values["now"])
        values["last_switch_at"] = _parse_dt(values.get("last_switch_at"))
        values["pools"] = tuple(PoolState.from_dict(p) for p in values.get("pools", ()))
        values["policy"] = Policy.from_dict(values.get("policy") or {})
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    """An engine's recommendation.

    ``target_pool_id`` is set exactly when ``action`` is ``switch``. ``expected_saving_per_hour``
    is the current hourly cost minus the recommended one (0 for ``stay``; negative for a
    safety move to a dearer option). ``reason`` is a sentence naming the rule and its numbers;
    ``details`` holds JSON-safe extras (the rule engine puts a stable ``rule`` code there).
    """

    action: Action
    target_pool_id: int | None = None
    expected_saving_per_hour: float = 0.0
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if (self.action == "switch") != (self.target_pool_id is not None):
            raise ValueError("target_pool_id is required for switch and only for switch")
        saving = self.expected_saving_per_hour
        if isinstance(saving, bool) or not isinstance(saving, int | float):
            raise ValueError("expected_saving_per_hour must be a number")
        if not math.isfinite(saving):
            raise ValueError("expected_saving_per_hour must be finite")
        object.__setattr__(self, "expected_saving_per_hour", float(saving))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (provided ``details`` is)."""
        return {
            "action": self.action,
            "target_pool_id": self.target_pool_id,
            "expected_saving_per_hour": self.expected_saving_per_hour,
            "reason": self.reason,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The inverse of :meth:`to_dict`."""
        return cls(**dict(data))


def validate_decision(inputs: DecisionInput, decision: object) -> str | None:
    """Why ``decision`` is not an acceptable answer to ``inputs``, or None when it is.

    Acceptable: a :class:`Decision`, with a non-empty reason and JSON-serialisable details;
    ``switch`` names one of ``inputs.pools`` other than the current one; ``on-demand`` only
    from spot and only when the policy allows it.
    """
    if not isinstance(decision, Decision):
        return f"returned {type(decision).__name__}, not a Decision"
    if not isinstance(decision.reason, str) or not decision.reason.strip():
        return "returned a decision without a reason"
    if decision.action == "switch":
        target = decision.target_pool_id
        if inputs.pool(target) is None:
            return f"chose pool {target}, which is not among the instance's pools"
        if inputs.current_lifecycle == "spot" and target == inputs.current_pool_id:
            return f"chose to switch to pool {target}, the current pool"
    if decision.action == "on-demand":
        if inputs.current_lifecycle == "on-demand":
            return "chose on-demand for an instance already on-demand (stay is the answer)"
        if not inputs.policy.allow_on_demand:
            return "chose on-demand, which the client's policy does not allow"
    if not isinstance(decision.details, dict):
        return "returned details that are not a dict"
    try:
        json.dumps(decision.details)
    except (TypeError, ValueError) as exc:
        return f"returned details that are not JSON-serialisable ({exc})"
    return None


# -- engines ----------------------------------------------------------------------------------


class DecisionEngine(Protocol):
    """What ``pricing_decision_engines()`` implementations return.

    ``decide`` may be a plain method or ``async def``; either way it must be fast (a budget of
    a few milliseconds) and must not do I/O: everything it needs is in the inputs.
    """

    name: str
    description: str

    def decide(self, inputs: DecisionInput) -> Decision | Awaitable[Decision]:
        """Recommend what the instance should do."""
        ...


def _judged_price(pool: PoolState) -> float | None:
    """A target's price for comparisons: the higher of its latest and recent-average price."""
    if pool.spot_price is None:
        return None
    if pool.recent_avg is None:
        return pool.spot_price
    return max(pool.spot_price, pool.recent_avg)


@dataclass(frozen=True)
class _Candidate:
    pool: PoolState
    price: float

    @property
    def key(self) -> tuple[float, int, int]:
        return (self.price, self.pool.interruptions_recent, self.pool.pool_id)


def _exclusion(inputs: DecisionInput, pool: PoolState, price: float | None) -> str | None:
    """Why ``pool`` may not be a target, or None."""
    policy = inputs.policy
    if price is None:
        return "no recent price"
    if pool.last_interruption_at is not None:
        ago = (inputs.now - pool.last_interruption_at).total_seconds()
        if ago < policy.interruption_cooldown_seconds:
            return (
                f"interrupted {_duration(ago)} ago, "
                f"cooldown {_duration(policy.interruption_cooldown_seconds)}"
            )
    if (
        policy.max_volatility is not None
        and pool.volatility is not None
        and pool.volatility > policy.max_volatility + EPSILON
    ):
        return f"volatility {_pct(pool.volatility)} above maximum {_pct(policy.max_volatility)}"
    ceiling = inputs.on_demand_price * policy.max_price_ratio
    if price > ceiling + EPSILON:
        return f"price {_money(price)}/h above ceiling {_money(ceiling)}/h"
    return None


class RuleEngine:
    """The built-in rule engine ``rules``: transparent, conservative, and the fallback of all.

    Prices: the current pool is valued at its latest spot price (what the instance pays now);
    a target pool at the *higher* of its latest price and its recent average, so a momentary
    dip never triggers a move and an estimated saving is never flattered. A target is
    *eligible* when it is not the current pool, has a recent price, had no interruption within
    ``interruption_cooldown_seconds``, is within ``max_volatility`` and its price is within
    ``on_demand_price * max_price_ratio`` (the ceiling). The best eligible pool is the one with
    the lowest price, then the fewest recent interruptions, then the lowest pool id.

    Rules, first match wins (``details["rule"]`` names it):

    1. Spot with a pending interruption notice (a safety move; the minimum time since the last
       switch and the minimum savings do not apply): ``switch`` to the best eligible pool if it
       is cheaper than on-demand (or on-demand is not allowed), else ``on-demand`` if allowed,
       else ``stay``. Rules ``interrupted-switch`` / ``interrupted-on-demand`` /
       ``interrupted-stay``.
    2. Spot without a recent price for the current pool: ``stay`` (``no-current-price``).
    3. Spot above the ceiling: leave it like rule 1, but only once the minimum time since the
       last switch has passed; the minimum savings do not apply (the ceiling says this pool
       is not worth it). Rules ``overpriced-switch`` / ``overpriced-on-demand`` /
       ``overpriced-stay`` / ``overpriced-min-time``.
    4. Otherwise (spot within the ceiling, or on-demand) consider the best eligible pool and
       ``switch`` only when the saving against the current hourly cost (spot price, or the
       on-demand price) is at least ``min_saving_per_hour`` and at least
       ``min_saving_percent`` of that cost, and the last switch is at least
       ``min_seconds_between_switches`` ago; else ``stay``. Rules ``no-candidate``,
       ``saving-absolute``, ``saving-percent``, ``min-time``, ``switch``.

    Thresholds are inclusive (a saving equal to the minimum passes, within 1e-9).
    """

    name = "rules"
    description = (
        "Rule-based: moves to a cheaper pool only past minimum savings and time since the last "
        "switch, never to a recently interrupted pool; leaves an interrupted or overpriced pool."
    )

    def decide(self, inputs: DecisionInput) -> Decision:
        """Recommend ``stay``, ``switch`` or ``on-demand``; see the class docstring."""
        policy = inputs.policy
        current = inputs.current_pool
        od = inputs.on_demand_price
        candidates: list[_Candidate] = []
        excluded: list[dict[str, Any]] = []
        for pool in inputs.pools:
            if current is not None and pool.pool_id == current.pool_id:
                continue
            price = _judged_price(pool)
            why = _exclusion(inputs, pool, price)
            if why is not None:
                excluded.append({"pool_id": pool.pool_id, "reason": why})
            else:
                candidates.append(_Candidate(pool, cast(float, price)))
        best = min(candidates, key=lambda c: c.key) if candidates else None

        if current is None:
            current_cost: float | None = od
            current_label = f"on-demand at {_money(od)}/h"
        else:
            current_cost = current.spot_price
            current_label = f"pool {current.pool_id} ({current.label})"
            if current_cost is not None:
                current_label += f" at {_money(current_cost)}/h"

        base: dict[str, Any] = {
            "current_price": current_cost,
            "on_demand_price": od,
            "candidates": len(candidates),
            "excluded": excluded,
            "best_pool_id": best.pool.pool_id if best else None,
            "best_price": best.price if best else None,
        }

        def decision(
            rule: str,
            action: Action,
            reason: str,
            *,
            target: _Candidate | None = None,
            extra: Mapping[str, Any] | None = None,
        ) -> Decision:
            if action == "switch" and target is not None:
                new_cost: float | None = target.price
            elif action == "on-demand":
                new_cost = od
            else:
                new_cost = None
            saving = 0.0
            if new_cost is not None and current_cost is not None:
                saving = current_cost - new_cost
            return Decision(
                action=action,
                target_pool_id=target.pool.pool_id if action == "switch" and target else None,
                expected_saving_per_hour=round(saving, 9),
                reason=reason,
                details={"rule": rule, **base, **(extra or {})},
            )

        def nowhere() -> str:
            if not excluded:
                return "no other pool"
            listed = "; ".join(f"pool {e['pool_id']}: {e['reason']}" for e in excluded[:3])
            more = f"; {len(excluded) - 3} more" if len(excluded) > 3 else ""
            return f"no eligible pool ({listed}{more})"

        def leave(prefix: str, rule: str) -> Decision:
            """Move off the current pool: best eligible pool, else on-demand, else stay."""
            if best is not None and (best.price < od or not policy.allow_on_demand):
                return decision(
                    f"{rule}-switch",
                    "switch",
                    f"{prefix}; moving to pool {best.pool.pool_id} ({best.pool.label}) "
                    f"at {_money(best.price)}/h",
                    target=best,
                )
            if policy.allow_on_demand:
                why = (
                    f"pool {best.pool.pool_id} at {_money(best.price)}/h is not cheaper than "
                    "on-demand"
                    if best is not None
                    else nowhere()
                )
                return decision(
                    f"{rule}-on-demand",
                    "on-demand",
                    f"{prefix}; {why}, moving to on-demand at {_money(od)}/h",
                )
            return decision(
                f"{rule}-stay",
                "stay",
                f"{prefix}; {nowhere()} and the policy does not allow on-demand, staying",
            )

        since = (
            (inputs.now - inputs.last_switch_at).total_seconds()
            if inputs.last_switch_at is not None
            else None
        )
        too_soon = since is not None and since < policy.min_seconds_between_switches
        wait = (
            f"last switch {_duration(since)} ago, minimum "
            f"{_duration(policy.min_seconds_between_switches)}"
            if since is not None
            else ""
        )

        if current is not None and inputs.current_pool_interrupted:
            return leave(f"{current_label} has a pending interruption notice", "interrupted")

        if current_cost is None:  # only on spot: on-demand costs the on-demand price
            return decision(
                "no-current-price",
                "stay",
                f"no recent spot price for {current_label}, staying",
            )

        ceiling = od * policy.max_price_ratio
        if current is not None and current_cost > ceiling + EPSILON:
            prefix = (
                f"{current_label} is above the ceiling {_money(ceiling)}/h "
                f"(on-demand {_money(od)}/h x {_pct(policy.max_price_ratio)})"
            )
            if too_soon:
                return decision(
                    "overpriced-min-time",
                    "stay",
                    f"{prefix}, but {wait}",
                    extra={"seconds_since": since},
                )
            return leave(prefix, "overpriced")

        if best is None:
            return decision("no-candidate", "stay", f"{nowhere()}, staying on {current_label}")

        saving = current_cost - best.price
        percent = saving / current_cost * 100 if current_cost > 0 else 0.0
        numbers = {"saving_per_hour": round(saving, 9), "saving_percent": round(percent, 6)}
        offer = (
            f"pool {best.pool.pool_id} ({best.pool.label}) at {_money(best.price)}/h "
            f"would save {_money(saving)}/h ({_pct(percent)}%) vs {current_label}"
        )
        if saving + EPSILON < policy.min_saving_per_hour:
            return decision(
                "saving-absolute",
                "stay",
                f"{offer}: below minimum {_money(policy.min_saving_per_hour)}/h",
                extra=numbers,
            )
        if percent + EPSILON < policy.min_saving_percent:
            return decision(
                "saving-percent",
                "stay",
                f"{offer}: below minimum {_pct(policy.min_saving_percent)}%",
                extra=numbers,
            )
        if too_soon:
            return decision("min-time", "stay", f"{offer}, but {wait}", extra=numbers)
        return decision(
            "switch", "switch", offer.replace("would save", "saves"), target=best, extra=numbers
        )


class CheapestEngine:
    """The built-in baseline ``cheapest``: always the cheapest priced pool, no anti-flapping.

    Values pools at their latest spot price, ignores savings thresholds, time since the last
    switch and past interruptions; only leaves a pool with a pending interruption notice and
    honours ``allow_on_demand``. Goes ``on-demand`` when every pool is dearer than on-demand.
    Meant for comparison and for trying engine selection, not for production fleets.
    """

    name = "cheapest"
    description = "Baseline: always the cheapest pool by latest price, no anti-flapping."

    def decide(self, inputs: DecisionInput) -> Decision:
        """The cheapest priced pool (ties: lowest pool id), else on-demand or stay."""
        current = inputs.current_pool
        od = inputs.on_demand_price
        priced = [
            p
            for p in inputs.pools
            if p.spot_price is not None
            and not (inputs.current_pool_interrupted and current is not None and p is current)
        ]
        best = min(priced, key=lambda p: (cast(float, p.spot_price), p.pool_id), default=None)
        current_cost = od if current is None else current.spot_price
        if best is not None and (
            cast(float, best.spot_price) < od or not inputs.policy.allow_on_demand
        ):
            price = cast(float, best.spot_price)
            if current is not None and best.pool_id == current.pool_id:
                return Decision("stay", reason=f"pool {best.pool_id} is the cheapest")
            saving = current_cost - price if current_cost is not None else 0.0
            return Decision(
                "switch",
                best.pool_id,
                round(saving, 9),
                f"pool {best.pool_id} at {_money(price)}/h is the cheapest",
            )
        if current is not None and inputs.policy.allow_on_demand:
            saving = current_cost - od if current_cost is not None else 0.0
            return Decision(
                "on-demand", None, round(saving, 9), "no spot pool is cheaper than on-demand"
            )
        return Decision("stay", reason="no spot pool is cheaper than on-demand to move to")


def builtin_engines() -> list[DecisionEngine]:
    """The engines the pricing plugin offers itself: ``rules`` and ``cheapest``."""
    return [RuleEngine(), CheapestEngine()]


def index_engines(groups: Iterable[Iterable[Any]]) -> dict[str, DecisionEngine]:
    """Engines by name from the hook's results (one list per implementation).

    Raises ValueError when an object lacks ``name``, ``description`` or ``decide``, or when two
    engines share a name.
    """
    found: dict[str, DecisionEngine] = {}
    for group in groups:
        for engine in group or ():
            name = getattr(engine, "name", None)
            if not isinstance(name, str) or not name:
                raise ValueError(f"decision engine {engine!r} has no name")
            if not isinstance(getattr(engine, "description", None), str):
                raise ValueError(f"decision engine {name!r} has no description")
            if not callable(getattr(engine, "decide", None)):
                raise ValueError(f"decision engine {name!r} has no decide()")
            if name in found:
                raise ValueError(f"two decision engines are named {name!r}")
            found[name] = cast(DecisionEngine, engine)
    return found


# -- runner -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineResult:
    """A decision and how it was reached.

    ``engine`` produced ``decision``; ``requested`` is the engine the client chose; when they
    differ, ``fallback_reason`` says why. ``elapsed_ms`` is the wall time of the whole run,
    fallback included.
    """

    decision: Decision
    engine: str
    requested: str
    fallback_reason: str | None
    elapsed_ms: float

    @property
    def fell_back(self) -> bool:
        """Whether the fallback engine decided instead of the requested one."""
        return self.fallback_reason is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "decision": self.decision.to_dict(),
            "engine": self.engine,
            "requested": self.requested,
            "fallback_reason": self.fallback_reason,
            "elapsed_ms": self.elapsed_ms,
        }


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


async def _call(engine: DecisionEngine, inputs: DecisionInput, timeout: float | None) -> object:
    result: object = engine.decide(inputs)
    if inspect.isawaitable(result):
        result = await asyncio.wait_for(result, timeout)
    return result


async def run_decision(
    engine: DecisionEngine,
    fallback: DecisionEngine,
    inputs: DecisionInput,
    budget_ms: float = 20.0,
    *,
    plugin: str = "",
) -> EngineResult:
    """Decide with ``engine``; on failure let ``fallback`` (the rule engine) decide instead.

    Failure: ``engine`` raises, returns something :func:`validate_decision` rejects, or takes
    longer than ``budget_ms``. An ``async`` engine is cancelled at the budget. A plain method
    cannot be interrupted safely (a thread would keep running and the call blocks the event
    loop anyway), so it runs to completion and its answer is discarded when it was late.
    The fallback itself runs without a budget; an exception from it propagates. When
    ``engine`` *is* the fallback (same name) its answer is kept even when late. ``plugin``
    (the plugin that contributed ``engine``) is named in the warning logged on a fallback.
    """
    if budget_ms <= 0:
        raise ValueError("budget_ms must be > 0")
    started = time.perf_counter()
    same = engine is fallback or engine.name == fallback.name
    reason: str | None = None
    result: object = None
    try:
        result = await _call(engine, inputs, None if same else budget_ms / 1000)
    except TimeoutError:
        if same:
            raise
        reason = f"engine {engine.name!r} exceeded its budget of {budget_ms:g} ms"
    except Exception as exc:
        if same:
            raise
        reason = f"engine {engine.name!r} raised {type(exc).__name__}: {exc}"
    took = _ms(started)
    if reason is None and not same and took > budget_ms:
        reason = f"engine {engine.name!r} took {took:.1f} ms, budget {budget_ms:g} ms"
    if reason is None:
        problem = validate_decision(inputs, result)
        if problem is not None:
            if same:
                raise ValueError(f"engine {engine.name!r} {problem}")
            reason = f"engine {engine.name!r} {problem}"
    if reason is None:
        return EngineResult(cast(Decision, result), engine.name, engine.name, None, _ms(started))

    log.warning(
        "decision engine fell back: %s (plugin %r)",
        reason,
        plugin,
        extra={
            "engine": engine.name,
            "plugin": plugin,
            "instance_id": inputs.instance_id,
            "reason": reason,
        },
    )
    decision = await _call(fallback, inputs, None)
    problem = validate_decision(inputs, decision)
    if problem is not None:
        raise ValueError(f"fallback engine {fallback.name!r} {problem}")
    return EngineResult(cast(Decision, decision), fallback.name, engine.name, reason, _ms(started))
