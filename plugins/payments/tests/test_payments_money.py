"""Money: currencies and their minor units, exact decimal amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from platform_payments.money import MAX_MINOR, MoneyError, format_amount, from_minor, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("10.50", "USD", 1050),
        ("10", "USD", 1000),
        ("1000", "JPY", 1000),
        ("1.234", "BHD", 1234),
        (Decimal("0.01"), "EUR", 1),
        (7, "KRW", 7),
        ("0.0001", "CLF", 1),
    ],
)
def test_amounts_become_minor_units(amount, currency, minor):
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "why"),
    [
        ("1.234", "USD", "decimal places"),
        ("1.5", "JPY", "decimal places"),
        ("0", "USD", "greater than zero"),
        ("-1", "USD", "greater than zero"),
        ("NaN", "USD", "finite"),
        ("abc", "USD", "decimal"),
        (1.5, "USD", "float"),
        (str(MAX_MINOR + 1), "JPY", "at most"),
        ("1", "XXX", "unknown currency"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(amount, currency, why):
    with pytest.raises(MoneyError, match=why):
        to_minor(amount, currency)


def test_minor_units_show_with_the_currency_exponent():
    assert format_amount(1050, "USD") == "10.50"
    assert format_amount(1000, "JPY") == "1000"
    assert format_amount(5, "KWD") == "0.005"
    assert from_minor(1, "USD") == Decimal("0.01")
