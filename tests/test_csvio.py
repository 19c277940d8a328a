"""The core CSV writer (formula-injection safe) and the reader that undoes its escaping."""

from __future__ import annotations

import csv
import io
import random

import pytest

from platform_core.csvio import (
    CSV_FORMULA_PREFIXES,
    CsvFormatError,
    CsvWriter,
    csv_escape,
    csv_row,
    csv_unescape,
    read_csv,
)

NASTY = [
    "=1+2",
    "+1",
    "-1+2",
    "@SUM(A1:A9)",
    "\t=cmd",
    "\rcmd",
    "=cmd|' /C calc'!A0",
    "\uff1d1+1",
    "'",
    "''",
    "'=1",
    " lead",
    "trail ",
    " ",
    "\n",
    "a\rb",
    "a\nb",
    "a\r\nb",
    'say "hi"',
    '"',
    "a,b",
    ",",
    "\ufeffbom",
    "caf\u00e9 \U0001f600",
    "-",
    "--1",
    "-1e",
    "-inf",
    "-nan",
]
ALPHABET = "=+-@'\"\t\r\n ,;:ab1.\u00e9\uff1d\u00a0\\"


def _round_trip(values: list[str]) -> list[str]:
    header = [f"c{i}" for i in range(len(values))]
    text = csv_row(header) + csv_row(values)
    [(_, row)] = list(read_csv(text))
    return [row[h] for h in header]


@pytest.mark.parametrize("prefix", sorted(CSV_FORMULA_PREFIXES))
def test_each_formula_prefix_is_exported_with_a_leading_quote(prefix: str) -> None:
    value = prefix + 'HYPERLINK("http://x")'
    line = csv_row([value])
    parsed = next(csv.reader(io.StringIO(line, newline="")))
    assert parsed == ["'" + value]
    assert _round_trip([value]) == [value]


@pytest.mark.parametrize("number", ["-1", "-0", "-12.5", "-.5", "-1.", "-1.5e-07", "-2E+10"])
def test_negative_numbers_are_left_alone(number: str) -> None:
    assert csv_escape(number) == number
    assert csv_row([number]) == number + "\n"
    assert _round_trip([number]) == [number]


@pytest.mark.parametrize("value", ["-1+2", "-1 ", "-1,5", "+1", "-inf", "-", "-1e"])
def test_almost_numbers_are_escaped(value: str) -> None:
    assert csv_escape(value) == "'" + value


def test_bare_cr_and_lf_in_a_value_are_quoted_not_line_ends() -> None:
    line = csv_row(["a\rb", "c\nd", "plain"])
    assert line == '"a\rb","c\nd",plain\n'
    assert _round_trip(["a\rb", "c\nd", "plain"]) == ["a\rb", "c\nd", "plain"]


def test_quotes_and_delimiters_are_quoted() -> None:
    assert csv_row(['say "hi"', "a,b"]) == '"say ""hi""","a,b"\n'


def test_values_starting_with_a_quote_or_with_surrounding_space_survive() -> None:
    values = ["'x", "'", " lead", "trail ", " "]
    assert [csv_escape(v) for v in values] == ["''x", "''", "' lead", "'trail ", "' "]
    assert _round_trip(values) == values


def test_none_and_booleans_and_numbers() -> None:
    assert csv_row([None, True, False, 3, -2.5]) == ",true,false,3,-2.5\n"


@pytest.mark.parametrize("value", NASTY)
def test_round_trip_of_nasty_strings(value: str) -> None:
    assert _round_trip([value, value]) == [value, value]


def test_round_trip_of_random_strings_is_exact() -> None:
    """Property: for any strings, read_csv(csv_row(values)) gives them back."""
    rng = random.Random(20261206)
    for _ in range(3000):
        values = [
            "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8)))
            for _ in range(rng.randint(1, 4))
        ]
        assert _round_trip(values) == values, values


def test_every_exported_cell_is_safe_for_a_spreadsheet() -> None:
    """Property: no cell the writer produces starts with a formula character unless it is
    a plain number."""
    rng = random.Random(7)
    for _ in range(2000):
        value = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6)))
        [cell] = next(csv.reader(io.StringIO(csv_row([value]), newline="")))
        assert cell[0] not in CSV_FORMULA_PREFIXES or cell.lstrip("-").replace(".", "").isdigit()


def test_reader_trims_unescaped_cells_and_keeps_escaped_ones() -> None:
    rows = list(read_csv("a , b\n x ,' y \n"))
    assert rows == [(2, {"a": "x", "b": " y "})]
    assert csv_unescape("'=1") == "=1"


def test_reader_leaves_short_records_short_and_skips_blank_lines() -> None:
    reader = read_csv("a,b\n1\n\n2,3\n")
    rows = list(reader)
    assert rows == [
        (2, {"a": "1"}),
        (4, {"a": "2", "b": "3"}),
    ]
    assert reader.missing(rows[0][1]) == ["b"]
    assert reader.missing(rows[1][1]) == []


def test_reader_drops_a_byte_order_mark() -> None:
    assert read_csv("\ufeffname,x\n").header == ["name", "x"]


def test_reader_refuses_a_record_longer_than_the_header() -> None:
    with pytest.raises(CsvFormatError) as err:
        list(read_csv("a,b\n1,2\n1,2,3\n"))
    assert err.value.line == 3 and "more cells" in err.value.message


def test_reader_refuses_an_unclosed_quote() -> None:
    with pytest.raises(CsvFormatError) as err:
        list(read_csv('a\n"open\n'))
    assert err.value.line == 2


def test_writer_writes_to_a_stream() -> None:
    out = io.StringIO(newline="")
    writer = CsvWriter(out, lineterminator="\r\n")
    writer.writerows([["a", "=b"], ["-1", None]])
    assert out.getvalue() == "a,'=b\r\n-1,\r\n"
    assert [r for _, r in read_csv(out.getvalue())] == [{"a": "-1", "=b": ""}]
