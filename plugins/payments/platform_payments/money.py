"""Money: ISO 4217 currencies with their minor units, and exact ``Decimal`` amounts.

Amounts are stored as integers of the currency's minor unit (cents for USD, yen for JPY,
fils for BHD) and shown as ``Decimal`` strings with exactly the currency's exponent. A float
never touches an amount.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 active codes and their exponent (number of minor-unit digits). Funds codes,
# precious metals and codes without minor units in the standard (XAU, XDR, ...) are left out.
EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        [
            "AED",
            "AFN",
            "ALL",
            "AMD",
            "ANG",
            "AOA",
            "ARS",
            "AUD",
            "AWG",
            "AZN",
            "BAM",
            "BBD",
            "BDT",
            "BGN",
            "BMD",
            "BND",
            "BOB",
            "BRL",
            "BSD",
            "BTN",
            "BWP",
            "BYN",
            "BZD",
            "CAD",
            "CDF",
            "CHF",
            "CNY",
            "COP",
            "CRC",
            "CUP",
            "CVE",
            "CZK",
            "DKK",
            "DOP",
            "DZD",
            "EGP",
            "ERN",
            "ETB",
            "EUR",
            "FJD",
            "FKP",
            "GBP",
            "GEL",
            "GHS",
            "GIP",
            "GMD",
            "GTQ",
            "GYD",
            "HKD",
            "HNL",
            "HTG",
            "HUF",
            "IDR",
            "ILS",
            "INR",
            "IRR",
            "JMD",
            "KES",
            "KGS",
            "KHR",
            "KPW",
            "KYD",
            "KZT",
            "LAK",
            "LBP",
            "LKR",
            "LRD",
            "LSL",
            "MAD",
            "MDL",
            "MGA",
            "MKD",
            "MMK",
            "MNT",
            "MOP",
            "MRU",
            "MUR",
            "MVR",
            "MWK",
            "MXN",
            "MYR",
            "MZN",
            "NAD",
            "NGN",
            "NIO",
            "NOK",
            "NPR",
            "NZD",
            "PAB",
            "PEN",
            "PGK",
            "PHP",
            "PKR",
            "PLN",
            "QAR",
            "RON",
            "RSD",
            "RUB",
            "SAR",
            "SBD",
            "SCR",
            "SDG",
            "SEK",
            "SGD",
            "SHP",
            "SLE",
            "SOS",
            "SRD",
            "SSP",
            "STN",
            "SVC",
            "SYP",
            "SZL",
            "THB",
            "TJS",
            "TMT",
            "TOP",
            "TRY",
            "TTD",
            "TWD",
            "TZS",
            "UAH",
            "USD",
            "UYU",
            "UZS",
            "VES",
            "WST",
            "XCD",
            "XCG",
            "YER",
            "ZAR",
            "ZMW",
            "ZWG",
        ],
        2,
    ),
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}

MAX_MINOR = 10**15
"""The largest amount in minor units (10 trillion dollars, a quadrillion yen): above it a
total is refused rather than risk overflowing a provider's field or a BIGINT sum."""


class MoneyError(ValueError):
    """An amount or currency that cannot be used; the message says why."""


def exponent(currency: str) -> int:
    """The number of minor-unit digits of ``currency``; ``MoneyError`` when it is unknown."""
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r} (an ISO 4217 code, e.g. USD)") from None


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """``amount`` in minor units of ``currency``.

    Refused (``MoneyError``): a float, a non-finite value, more decimals than the currency
    has (``1.234`` USD, ``1.5`` JPY), zero or negative, or more than :data:`MAX_MINOR`.
    """
    if isinstance(amount, float):
        raise MoneyError('must be a decimal string, not a float (e.g. "10.50")')
    places = exponent(currency)
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        raise MoneyError("is not a decimal number") from None
    if not value.is_finite():
        raise MoneyError("must be a finite number")
    exp = value.as_tuple().exponent
    if isinstance(exp, int) and -exp > places:
        raise MoneyError(f"has more than {places} decimal places for {currency}")
    minor = int(value.scaleb(places))
    if value <= 0 or minor <= 0:
        raise MoneyError("must be greater than zero")
    if minor > MAX_MINOR:
        raise MoneyError(f"must be at most {from_minor(MAX_MINOR, currency)} {currency}")
    return minor


def from_minor(minor: int, currency: str) -> Decimal:
    """An amount in minor units as a ``Decimal`` with exactly the currency's decimals."""
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_amount(minor: int, currency: str) -> str:
    """``"10.50"`` (USD), ``"1000"`` (JPY): the decimal text providers expect."""
    return str(from_minor(minor, currency))
