"""The order state machine, in one place."""

from __future__ import annotations

import typing

import pytest
from platform_payments import states
from platform_payments.schemas.orders import StatusName

from platform_core import Conflict


class _Order:
    id = 7

    def __init__(self, status: str) -> None:
        self.status = status


def test_the_api_lists_exactly_the_machine_states():
    assert set(typing.get_args(StatusName)) == set(states.STATES) == set(states.TRANSITIONS)


def test_final_states_have_no_way_out():
    for final in (states.REFUNDED, states.CANCELLED, states.FAILED, states.EXPIRED):
        assert states.TRANSITIONS[final] == frozenset()


def test_paid_needs_an_open_order_and_refunds_need_a_paid_one():
    assert set(states.sources(states.PAID)) == set(states.OPEN)
    assert set(states.sources(states.REFUNDED)) == {states.PAID, states.PARTIALLY_REFUNDED}


@pytest.mark.parametrize(
    ("current", "target"),
    [("created", "refunded"), ("paid", "cancelled"), ("refunded", "paid"), ("expired", "pending")],
)
def test_an_illegal_move_is_a_conflict_naming_the_current_state(current, target):
    with pytest.raises(Conflict) as refused:
        states.check(_Order(current), target)
    assert refused.value.extra["current_state"] == current
    assert f"is {current}" in refused.value.detail
