"""Decision engines: rules and thresholds of the rule engine, fallbacks of the runner, JSON."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pluggy
import pytest
from platform_pricing import hookspecs
from platform_pricing.engines import (
    CheapestEngine,
    Decision,
    DecisionInput,
    EngineResult,
    Policy,
    PoolState,
    RuleEngine,
    builtin_engines,
    index_engines,
    run_decision,
    validate_decision,
)

from platform_core import hookimpl

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def pool(pool_id: int, price: float | None, avg: float | None = None, **extra: Any) -> PoolState:
    """A pool in eu-west-1 whose zone is derived from its id; ``avg`` defaults to ``price``."""
    return PoolState(
        pool_id=pool_id,
        region="eu-west-1",
        zone=f"eu-west-1{'abc'[pool_id % 3]}",
        instance_type="m5.large",
        spot_price=price,
        recent_avg=price if avg is None else avg,
        **extra,
    )


def make(
    *pools: PoolState,
    current: int | None = 1,
    lifecycle: str = "spot",
    od: float = 0.10,
    last_switch: timedelta | None = None,
    interrupted: bool = False,
    **policy: Any,
) -> DecisionInput:
    """Inputs at ``NOW``; ``last_switch`` is how long ago the last switch was."""
    return DecisionInput(
        now=NOW,
        instance_id=7,
        current_pool_id=current,
        current_lifecycle=lifecycle,  # type: ignore[arg-type]
        on_demand_price=od,
        pools=pools,
        last_switch_at=NOW - last_switch if last_switch is not None else None,
        current_pool_interrupted=interrupted,
        policy=Policy(**policy),
    )


@pytest.fixture
def rules() -> RuleEngine:
    return RuleEngine()


# -- price-driven moves from spot -------------------------------------------------------------


def test_rules_switch_when_saving_passes_both_minimums(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.08)))
    assert decision.action == "switch"
    assert decision.target_pool_id == 2
    assert decision.expected_saving_per_hour == pytest.approx(0.02)
    assert decision.details["rule"] == "switch"
    assert decision.reason == (
        "pool 2 (eu-west-1/eu-west-1c/m5.large) at 0.08/h saves 0.02/h (20%) "
        "vs pool 1 (eu-west-1/eu-west-1b/m5.large) at 0.1/h"
    )


@pytest.mark.parametrize(
    ("target_price", "action"),
    [(0.0901, "stay"), (0.09, "switch"), (0.0899, "switch")],
    ids=["9.9%-below", "10%-equal", "10.1%-above"],
)
def test_rules_minimum_saving_percent_boundary(
    rules: RuleEngine, target_price: float, action: str
) -> None:
    # current 0.10: every saving here is >= 0.0099/h, above the absolute minimum 0.005/h
    decision = rules.decide(make(pool(1, 0.10), pool(2, target_price)))
    assert decision.action == action


def test_rules_saving_below_percent_names_the_numbers(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.0901)))
    assert decision.details["rule"] == "saving-percent"
    assert decision.expected_saving_per_hour == 0.0
    assert decision.details["saving_per_hour"] == pytest.approx(0.0099)
    assert decision.details["saving_percent"] == pytest.approx(9.9)
    assert "would save 0.0099/h (9.9%)" in decision.reason
    assert decision.reason.endswith("below minimum 10%")


@pytest.mark.parametrize(
    ("target_price", "action"),
    [(0.0351, "stay"), (0.035, "switch"), (0.0349, "switch")],
    ids=["0.0049-below", "0.005-equal", "0.0051-above"],
)
def test_rules_minimum_saving_per_hour_boundary(
    rules: RuleEngine, target_price: float, action: str
) -> None:
    # current 0.04: every saving here is >= 12.25%, above the percent minimum 10%
    decision = rules.decide(make(pool(1, 0.04), pool(2, target_price)))
    assert decision.action == action


def test_rules_saving_below_absolute_names_the_numbers(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.04), pool(2, 0.0351)))
    assert decision.details["rule"] == "saving-absolute"
    assert "would save 0.0049/h (12.25%)" in decision.reason
    assert decision.reason.endswith("below minimum 0.005/h")


def test_rules_minimums_follow_the_policy(rules: RuleEngine) -> None:
    inputs = make(pool(1, 0.10), pool(2, 0.082), min_saving_percent=20.0)
    decision = rules.decide(inputs)
    assert decision.action == "stay"
    assert decision.reason.endswith(
        "(18%) vs pool 1 (eu-west-1/eu-west-1b/m5.large) at 0.1/h: below minimum 20%"
    )
    relaxed = rules.decide(replace(inputs, policy=Policy(min_saving_percent=18.0)))
    assert relaxed.action == "switch"


def test_rules_value_a_target_at_its_recent_average_when_higher(rules: RuleEngine) -> None:
    # a momentary dip to 0.05 in a pool averaging 0.095 saves only 0.005 (5%): not a move
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.05, avg=0.095)))
    assert decision.action == "stay"
    assert decision.details["rule"] == "saving-percent"
    assert decision.details["best_price"] == pytest.approx(0.095)


def test_rules_value_a_target_at_its_latest_price_when_higher(rules: RuleEngine) -> None:
    # a pool rising above its average (0.06) is judged at today's 0.095
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.095, avg=0.06)))
    assert decision.action == "stay"
    assert decision.details["best_price"] == pytest.approx(0.095)


def test_rules_value_the_current_pool_at_its_latest_price(rules: RuleEngine) -> None:
    # the current pool averaged 0.05 but costs 0.10 now: the saving is against 0.10
    decision = rules.decide(make(pool(1, 0.10, avg=0.05), pool(2, 0.08)))
    assert decision.action == "switch"
    assert decision.expected_saving_per_hour == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("ago", "action"),
    [(timedelta(seconds=3599), "stay"), (timedelta(seconds=3600), "switch"), (None, "switch")],
    ids=["just-before", "exactly", "never-switched"],
)
def test_rules_minimum_time_since_last_switch(
    rules: RuleEngine, ago: timedelta | None, action: str
) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.08), last_switch=ago))
    assert decision.action == action


def test_rules_too_soon_names_the_times(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.08), last_switch=timedelta(minutes=12)))
    assert decision.details["rule"] == "min-time"
    assert decision.reason.endswith("but last switch 12 min ago, minimum 1 h")


def test_rules_minimum_time_follows_the_policy(rules: RuleEngine) -> None:
    inputs = make(
        pool(1, 0.10),
        pool(2, 0.08),
        last_switch=timedelta(minutes=12),
        min_seconds_between_switches=600,
    )
    assert rules.decide(inputs).action == "switch"


def test_rules_exclude_a_recently_interrupted_target(rules: RuleEngine) -> None:
    recent = NOW - timedelta(hours=5, minutes=59)
    decision = rules.decide(
        make(pool(1, 0.10), pool(2, 0.05, last_interruption_at=recent), pool(3, 0.08))
    )
    assert decision.action == "switch"
    assert decision.target_pool_id == 3
    assert decision.details["excluded"] == [
        {"pool_id": 2, "reason": "interrupted 5 h 59 min ago, cooldown 6 h"}
    ]


def test_rules_stay_when_the_only_cheaper_pool_was_recently_interrupted(
    rules: RuleEngine,
) -> None:
    recent = NOW - timedelta(hours=5, minutes=59)
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.05, last_interruption_at=recent)))
    assert decision.action == "stay"
    assert decision.details["rule"] == "no-candidate"
    assert decision.reason == (
        "no eligible pool (pool 2: interrupted 5 h 59 min ago, cooldown 6 h), "
        "staying on pool 1 (eu-west-1/eu-west-1b/m5.large) at 0.1/h"
    )


def test_rules_accept_a_target_interrupted_exactly_the_cooldown_ago(rules: RuleEngine) -> None:
    old = NOW - timedelta(hours=6)
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.05, last_interruption_at=old)))
    assert decision.target_pool_id == 2


def test_rules_cooldown_follows_the_policy(rules: RuleEngine) -> None:
    recent = NOW - timedelta(hours=2)
    inputs = make(
        pool(1, 0.10),
        pool(2, 0.05, last_interruption_at=recent),
        interruption_cooldown_seconds=3600,
    )
    assert rules.decide(inputs).target_pool_id == 2


def test_rules_exclude_a_target_without_recent_price(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(2, None)))
    assert decision.action == "stay"
    assert decision.details["excluded"] == [{"pool_id": 2, "reason": "no recent price"}]


def test_rules_exclude_a_target_above_the_volatility_maximum(rules: RuleEngine) -> None:
    inputs = make(
        pool(1, 0.10),
        pool(2, 0.05, volatility=0.31),
        pool(3, 0.06, volatility=0.3),
        max_volatility=0.3,
    )
    decision = rules.decide(inputs)
    assert decision.target_pool_id == 3
    assert decision.details["excluded"] == [
        {"pool_id": 2, "reason": "volatility 0.31 above maximum 0.3"}
    ]


def test_rules_stay_without_a_recent_price_for_the_current_pool(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, None), pool(2, 0.01)))
    assert decision.action == "stay"
    assert decision.details["rule"] == "no-current-price"
    assert decision.reason.startswith("no recent spot price for pool 1")


def test_rules_stay_when_the_instance_has_a_single_pool(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10)))
    assert decision.action == "stay"
    assert decision.reason.startswith("no other pool")


# -- ties -------------------------------------------------------------------------------------


def test_rules_tie_prefers_fewer_recent_interruptions(rules: RuleEngine) -> None:
    decision = rules.decide(
        make(
            pool(1, 0.10),
            pool(2, 0.08, interruptions_recent=2),
            pool(3, 0.08, interruptions_recent=1),
        )
    )
    assert decision.target_pool_id == 3


def test_rules_tie_prefers_the_lower_pool_id(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(5, 0.08), pool(4, 0.08)))
    assert decision.target_pool_id == 4


def test_rules_lower_price_wins_over_fewer_interruptions(rules: RuleEngine) -> None:
    decision = rules.decide(
        make(pool(1, 0.10), pool(2, 0.07, interruptions_recent=3), pool(3, 0.08))
    )
    assert decision.target_pool_id == 2


# -- pending interruption of the current pool -------------------------------------------------


def test_rules_interrupted_pool_moves_right_after_a_switch(rules: RuleEngine) -> None:
    # one minute after a switch, to a dearer pool: safety ignores time and saving minimums
    decision = rules.decide(
        make(pool(1, 0.05), pool(2, 0.06), interrupted=True, last_switch=timedelta(minutes=1))
    )
    assert decision.action == "switch"
    assert decision.target_pool_id == 2
    assert decision.expected_saving_per_hour == pytest.approx(-0.01)
    assert decision.details["rule"] == "interrupted-switch"
    assert "has a pending interruption notice" in decision.reason


def test_rules_interrupted_pool_avoids_recently_interrupted_targets(rules: RuleEngine) -> None:
    recent = NOW - timedelta(hours=1)
    decision = rules.decide(
        make(
            pool(1, 0.05),
            pool(2, 0.03, last_interruption_at=recent),
            pool(3, 0.07),
            interrupted=True,
        )
    )
    assert decision.target_pool_id == 3


def test_rules_interrupted_pool_goes_on_demand_when_nothing_qualifies(rules: RuleEngine) -> None:
    recent = NOW - timedelta(hours=1)
    decision = rules.decide(
        make(pool(1, 0.05), pool(2, 0.03, last_interruption_at=recent), interrupted=True)
    )
    assert decision.action == "on-demand"
    assert decision.target_pool_id is None
    assert decision.expected_saving_per_hour == pytest.approx(-0.05)
    assert decision.details["rule"] == "interrupted-on-demand"
    assert decision.reason.endswith("moving to on-demand at 0.1/h")


def test_rules_interrupted_pool_prefers_on_demand_over_a_dearer_pool(rules: RuleEngine) -> None:
    # the ceiling 1.5 x 0.10 admits pool 2 at 0.12, but on-demand at 0.10 is cheaper
    decision = rules.decide(
        make(pool(1, 0.05), pool(2, 0.12), interrupted=True, max_price_ratio=1.5)
    )
    assert decision.action == "on-demand"


def test_rules_interrupted_pool_stays_when_on_demand_is_not_allowed(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.05), interrupted=True, allow_on_demand=False))
    assert decision.action == "stay"
    assert decision.details["rule"] == "interrupted-stay"
    assert "the policy does not allow on-demand" in decision.reason


def test_rules_interrupted_pool_without_price_still_moves(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, None), pool(2, 0.06), interrupted=True))
    assert decision.target_pool_id == 2
    assert decision.expected_saving_per_hour == 0.0


# -- current pool above the on-demand ceiling -------------------------------------------------


def test_rules_overpriced_pool_moves_to_an_eligible_pool_without_saving_minimums(
    rules: RuleEngine,
) -> None:
    # ceiling 0.9 x 0.10 = 0.09; 0.095 -> 0.089 saves 6.3%, below 10%, yet the move is made
    decision = rules.decide(make(pool(1, 0.095), pool(2, 0.089), max_price_ratio=0.9))
    assert decision.action == "switch"
    assert decision.target_pool_id == 2
    assert decision.expected_saving_per_hour == pytest.approx(0.006)
    assert decision.details["rule"] == "overpriced-switch"


def test_rules_overpriced_pool_goes_on_demand_when_no_pool_is_cheaper(rules: RuleEngine) -> None:
    # pool 2 at 0.105 is above the ceiling 0.10: not a target
    decision = rules.decide(make(pool(1, 0.12), pool(2, 0.105)))
    assert decision.action == "on-demand"
    assert decision.expected_saving_per_hour == pytest.approx(0.02)
    assert decision.details["rule"] == "overpriced-on-demand"
    assert decision.details["excluded"] == [
        {"pool_id": 2, "reason": "price 0.105/h above ceiling 0.1/h"}
    ]
    assert decision.reason.startswith(
        "pool 1 (eu-west-1/eu-west-1b/m5.large) at 0.12/h is above the ceiling 0.1/h "
        "(on-demand 0.1/h x 1)"
    )


def test_rules_price_at_the_ceiling_is_not_overpriced(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.105)))
    assert decision.action == "stay"
    assert decision.details["rule"] == "no-candidate"


def test_rules_overpriced_pool_waits_for_the_minimum_time(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.12), last_switch=timedelta(minutes=30)))
    assert decision.action == "stay"
    assert decision.details["rule"] == "overpriced-min-time"
    assert decision.reason.endswith("but last switch 30 min ago, minimum 1 h")


def test_rules_overpriced_pool_stays_when_on_demand_is_not_allowed(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.12), allow_on_demand=False))
    assert decision.action == "stay"
    assert decision.details["rule"] == "overpriced-stay"


# -- from on-demand ---------------------------------------------------------------------------


def test_rules_on_demand_moves_back_to_spot(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.07), pool(2, 0.06), current=None, lifecycle="on-demand"))
    assert decision.action == "switch"
    assert decision.target_pool_id == 2
    assert decision.expected_saving_per_hour == pytest.approx(0.04)
    assert decision.reason.endswith("saves 0.04/h (40%) vs on-demand at 0.1/h")


@pytest.mark.parametrize(
    ("price", "action"), [(0.0901, "stay"), (0.09, "switch")], ids=["9.9%", "10%"]
)
def test_rules_on_demand_applies_saving_minimums(
    rules: RuleEngine, price: float, action: str
) -> None:
    decision = rules.decide(make(pool(1, price), current=None, lifecycle="on-demand"))
    assert decision.action == action


def test_rules_on_demand_applies_the_minimum_time(rules: RuleEngine) -> None:
    decision = rules.decide(
        make(pool(1, 0.05), current=None, lifecycle="on-demand", last_switch=timedelta(minutes=5))
    )
    assert decision.action == "stay"
    assert decision.details["rule"] == "min-time"


def test_rules_on_demand_stays_without_eligible_spot_pool(rules: RuleEngine) -> None:
    recent = NOW - timedelta(minutes=10)
    decision = rules.decide(
        make(
            pool(1, None),
            pool(2, 0.03, last_interruption_at=recent),
            current=None,
            lifecycle="on-demand",
        )
    )
    assert decision.action == "stay"
    assert decision.details["rule"] == "no-candidate"


# -- the cheapest engine ----------------------------------------------------------------------


def test_cheapest_switches_without_minimums() -> None:
    decision = CheapestEngine().decide(
        make(pool(1, 0.10), pool(2, 0.099), last_switch=timedelta(seconds=1))
    )
    assert decision.target_pool_id == 2


def test_cheapest_stays_on_the_cheapest_pool() -> None:
    assert CheapestEngine().decide(make(pool(1, 0.05), pool(2, 0.06))).action == "stay"


def test_cheapest_leaves_an_interrupted_pool() -> None:
    decision = CheapestEngine().decide(make(pool(1, 0.05), pool(2, 0.06), interrupted=True))
    assert decision.target_pool_id == 2


# -- inputs and outputs -----------------------------------------------------------------------


def test_inputs_round_trip_through_json() -> None:
    inputs = make(
        pool(1, 0.10, recent_max=0.2, volatility=0.1),
        pool(2, 0.08, last_interruption_at=NOW - timedelta(days=1), interruptions_recent=1),
        last_switch=timedelta(hours=3),
        interrupted=True,
        min_saving_percent=15.0,
        max_volatility=0.5,
    )
    data = json.loads(json.dumps(inputs.to_dict()))
    assert data["now"] == "2025-03-01T12:00:00+00:00"
    assert DecisionInput.from_dict(data) == inputs


def test_decision_and_result_round_trip_through_json(rules: RuleEngine) -> None:
    decision = rules.decide(make(pool(1, 0.10), pool(2, 0.08), pool(3, None)))
    assert Decision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision
    result = EngineResult(decision, "rules", "x", "engine 'x' raised", 1.5)
    assert json.loads(json.dumps(result.to_dict()))["decision"]["target_pool_id"] == 2


def test_inputs_normalise_datetimes_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    inputs = replace(make(pool(1, 0.1)), now=datetime(2025, 3, 1, 13, 0, tzinfo=paris))
    assert inputs.now == NOW
    assert inputs.now.tzinfo is UTC


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"now": datetime(2025, 3, 1, 12, 0)}, "timezone-aware"),
        ({"current_pool_id": None}, "current_pool_id is required"),
        ({"current_pool_id": 9}, "not among the pools"),
        ({"on_demand_price": 0.0}, "on_demand_price must be > 0"),
        ({"current_lifecycle": "reserved"}, "current_lifecycle"),
        ({"pools": (pool(1, 0.1), pool(1, 0.2))}, "unique"),
    ],
)
def test_inputs_refuse_inconsistent_values(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(make(pool(1, 0.1)), **change)


@pytest.mark.parametrize("price", [-0.01, float("nan"), float("inf")])
def test_pool_refuses_a_bad_price(price: float) -> None:
    with pytest.raises(ValueError, match="spot_price"):
        pool(1, price, avg=0.1)


def test_policy_refuses_unknown_settings() -> None:
    with pytest.raises(ValueError, match="unknown policy settings: min_saving"):
        Policy.from_dict({"min_saving": 5})


def test_policy_refuses_a_zero_price_ratio() -> None:
    with pytest.raises(ValueError, match="max_price_ratio"):
        Policy(max_price_ratio=0)


def test_decision_switch_requires_a_target() -> None:
    with pytest.raises(ValueError, match="target_pool_id"):
        Decision("switch", None, 0.0, "why")


def test_validate_accepts_the_rule_engines_answer(rules: RuleEngine) -> None:
    inputs = make(pool(1, 0.10), pool(2, 0.08))
    assert validate_decision(inputs, rules.decide(inputs)) is None


# -- the runner -------------------------------------------------------------------------------


class Fixed:
    """An engine answering a fixed decision (or raising it, when it is an exception)."""

    description = "test engine"

    def __init__(self, answer: Any, name: str = "custom") -> None:
        self.name = name
        self.answer = answer

    def decide(self, inputs: DecisionInput) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Sleepy:
    """A sync engine that blocks for ``seconds`` and then stays."""

    name = "sleepy"
    description = "slow sync engine"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def decide(self, inputs: DecisionInput) -> Decision:
        time.sleep(self.seconds)
        return Decision("stay", reason="slept")


class AsyncSleepy:
    """An async engine that sleeps for ``seconds`` and then stays."""

    name = "async-sleepy"
    description = "slow async engine"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def decide(self, inputs: DecisionInput) -> Decision:
        await asyncio.sleep(self.seconds)
        return Decision("stay", reason="slept")


@pytest.fixture
def inputs() -> DecisionInput:
    """Pool 2 is clearly cheaper: the rule engine switches to it."""
    return make(pool(1, 0.10), pool(2, 0.08))


async def test_run_uses_the_requested_engine(inputs: DecisionInput, rules: RuleEngine) -> None:
    answer = Decision("stay", reason="mine")
    result = await run_decision(Fixed(answer), rules, inputs, 20)
    assert result.decision is answer
    assert (result.engine, result.requested, result.fallback_reason) == ("custom", "custom", None)
    assert not result.fell_back
    assert result.elapsed_ms >= 0


async def test_run_rule_engine_directly(inputs: DecisionInput, rules: RuleEngine) -> None:
    result = await run_decision(rules, rules, inputs, 20)
    assert (result.engine, result.fallback_reason) == ("rules", None)
    assert result.decision.target_pool_id == 2


async def test_run_falls_back_when_the_engine_raises(
    inputs: DecisionInput, rules: RuleEngine
) -> None:
    result = await run_decision(Fixed(ValueError("no data")), rules, inputs, 20)
    assert result.engine == "rules"
    assert result.requested == "custom"
    assert result.fallback_reason == "engine 'custom' raised ValueError: no data"
    assert result.decision == rules.decide(inputs)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"action": "stay"}, "returned dict, not a Decision"),
        (Decision("switch", 99, 0.1, "x"), "chose pool 99, which is not among"),
        (Decision("switch", 1, 0.0, "x"), "chose to switch to pool 1, the current pool"),
        (Decision("stay", reason=" "), "without a reason"),
        (Decision("stay", reason="x", details={"at": NOW}), "not JSON-serialisable"),
    ],
    ids=["not-a-decision", "unknown-pool", "current-pool", "no-reason", "details"],
)
async def test_run_falls_back_on_an_invalid_decision(
    inputs: DecisionInput, rules: RuleEngine, answer: Any, message: str
) -> None:
    result = await run_decision(Fixed(answer), rules, inputs, 20)
    assert result.engine == "rules"
    assert result.fallback_reason is not None
    assert result.fallback_reason.startswith("engine 'custom' ")
    assert message in result.fallback_reason


async def test_run_falls_back_on_on_demand_the_policy_forbids(rules: RuleEngine) -> None:
    inputs = make(pool(1, 0.10), pool(2, 0.08), allow_on_demand=False)
    result = await run_decision(Fixed(Decision("on-demand", reason="x")), rules, inputs, 20)
    assert result.fallback_reason == (
        "engine 'custom' chose on-demand, which the client's policy does not allow"
    )


async def test_run_falls_back_on_on_demand_when_already_on_demand(rules: RuleEngine) -> None:
    inputs = make(pool(1, 0.05), current=None, lifecycle="on-demand")
    result = await run_decision(Fixed(Decision("on-demand", reason="x")), rules, inputs, 20)
    assert result.engine == "rules"
    assert result.decision.target_pool_id == 1


async def test_run_discards_a_late_sync_engine(inputs: DecisionInput, rules: RuleEngine) -> None:
    result = await run_decision(Sleepy(0.03), rules, inputs, 10)
    assert result.engine == "rules"
    assert result.decision.action == "switch"
    assert result.fallback_reason is not None
    assert result.fallback_reason.startswith("engine 'sleepy' took ")
    assert result.fallback_reason.endswith(" ms, budget 10 ms")
    assert result.elapsed_ms >= 30


async def test_run_cancels_a_late_async_engine(inputs: DecisionInput, rules: RuleEngine) -> None:
    result = await run_decision(AsyncSleepy(5), rules, inputs, 20)
    assert result.engine == "rules"
    assert result.fallback_reason == "engine 'async-sleepy' exceeded its budget of 20 ms"
    assert result.elapsed_ms < 2000


async def test_run_awaits_an_async_engine(inputs: DecisionInput, rules: RuleEngine) -> None:
    result = await run_decision(AsyncSleepy(0), rules, inputs, 200)
    assert (result.engine, result.fallback_reason) == ("async-sleepy", None)
    assert result.decision.reason == "slept"


async def test_run_propagates_a_failure_of_the_fallback_itself(inputs: DecisionInput) -> None:
    broken = Fixed(RuntimeError("bug"), name="rules")
    with pytest.raises(RuntimeError, match="bug"):
        await run_decision(broken, broken, inputs, 20)


async def test_run_refuses_a_non_positive_budget(inputs: DecisionInput, rules: RuleEngine) -> None:
    with pytest.raises(ValueError, match="budget_ms"):
        await run_decision(rules, rules, inputs, 0)


# -- registry and hook ------------------------------------------------------------------------


def test_builtin_engines_are_rules_and_cheapest() -> None:
    engines = index_engines([builtin_engines()])
    assert list(engines) == ["rules", "cheapest"]
    assert all(engine.description for engine in engines.values())


def test_index_engines_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError, match="two decision engines are named 'rules'"):
        index_engines([builtin_engines(), [Fixed(None, name="rules")]])


def test_index_engines_refuses_an_object_without_decide() -> None:
    class NoDecide:
        name = "broken"
        description = "no decide"

    with pytest.raises(ValueError, match="has no decide"):
        index_engines([[NoDecide()]])


def test_hook_pricing_decision_engines() -> None:
    class Extra:
        @hookimpl
        def pricing_decision_engines(self) -> list[Any]:
            return [Fixed(Decision("stay", reason="x"), name="extra")]

    class Builtin:
        @hookimpl
        def pricing_decision_engines(self) -> list[Any]:
            return builtin_engines()

    pm = pluggy.PluginManager("platform_core")
    pm.add_hookspecs(hookspecs)
    pm.register(Builtin())
    pm.register(Extra())
    engines = index_engines(pm.hook.pricing_decision_engines())
    assert sorted(engines) == ["cheapest", "extra", "rules"]
