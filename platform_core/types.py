"""Text types every schema uses, so text is refused or stored the same on every database.

PostgreSQL refuses a NUL character in text, SQLite stores it; neither can encode an unpaired
UTF-16 surrogate (``"\\ud800"`` in JSON decodes to one). Left to the database, such a value is
stored on one backend and refused on the other, or fails as a 500. These types refuse them in
validation instead, with a 422 naming the field, identically on both databases:

- :data:`Line` -- one line of text (names, keys, tags, identifiers, search strings): no
  control character at all (C0 including tab and line breaks, DEL, C1), no unpaired surrogate.
- :data:`Text` -- free text (descriptions, notes, messages): tab, LF and CR are allowed; every
  other control character and unpaired surrogates are refused.
- :data:`JsonText` -- an arbitrary JSON value (custom fields, settings blobs) whose every
  string, keys included, follows the rules of :data:`Text`; :data:`TextValues` applies the
  same check to another type (``Annotated[str | int | None, TextValues]``).

Use them as ``name: Line = Field(min_length=1, max_length=100)``, in query, path and form
parameters (``Annotated[Line, Query(max_length=64)]``) as in bodies. Code that takes text from
elsewhere (CSV rows, CLI arguments) checks it with :func:`text_error` before it reaches the
database.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# C0 controls, DEL and C1 controls; surrogates (only unpaired ones survive JSON decoding).
_LINE_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TEXT_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_JSON_DEPTH = 64
"""How deeply arrays and objects may nest in a JSON request body or JSON value (every route)."""

_NOT_SYNTAX = bytes(b for b in range(256) if b not in b'"[]{}')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def text_error(value: str, *, multiline: bool = False) -> tuple[str, str] | None:
    """Why ``value`` is refused as text, as ``(error type, message)``; None when it is fine.

    ``multiline`` allows tab, LF and CR (free text); otherwise every control character is
    refused (one-line text).
    """
    found = (_TEXT_BAD if multiline else _LINE_BAD).search(value)
    if found is None:
        return None
    char = found.group()
    where = f"at character {found.start() + 1}"
    if "\ud800" <= char <= "\udfff":
        return (
            "unpaired_surrogate",
            f"must be valid Unicode text: unpaired surrogate U+{ord(char):04X} {where}",
        )
    kind = "text" if multiline else "one-line text"
    return (
        "control_character",
        f"control character U+{ord(char):04X} {where} is not allowed in {kind}",
    )


def check_text(value: str, *, multiline: bool = False) -> str:
    """Return ``value`` or raise ``ValueError`` with :func:`text_error`'s message."""
    error = text_error(value, multiline=multiline)
    if error is not None:
        raise ValueError(error[1])
    return value


def _raise(error: tuple[str, str]) -> None:
    raise PydanticCustomError(error[0], error[1])


def _line(value: str) -> str:
    error = text_error(value)
    if error is not None:
        _raise(error)
    return value


def _text(value: str) -> str:
    error = text_error(value, multiline=True)
    if error is not None:
        _raise(error)
    return value


def json_text_error(value: Any, *, multiline: bool = True) -> tuple[str, str] | None:
    """The first string (key or value) of a JSON value :data:`Text` refuses, with its path.

    ``multiline=False`` applies the rules of :data:`Line` instead.
    """
    todo: list[tuple[Any, str, int]] = [(value, "", 0)]
    while todo:
        item, path, depth = todo.pop()
        if depth > MAX_JSON_DEPTH:
            return ("json_too_deep", f"is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, str):
            error = text_error(item, multiline=multiline)
            if error is not None:
                return (error[0], f"{path}: {error[1]}" if path else error[1])
        elif isinstance(item, dict):
            for key, sub in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    error = text_error(key, multiline=multiline)
                    if error is not None:
                        return (error[0], f"key {name!r}: {error[1]}")
                todo.append((sub, name, depth + 1))
        elif isinstance(item, list | tuple):
            todo.extend((sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))
    return None


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects nest more than ``limit`` levels deep in the JSON ``body``."""
    if body.count(b"[") + body.count(b"{") <= limit:  # the common case, at C speed
        return False
    return json_depth(body, limit) > limit


def json_depth(body: bytes, limit: int | None = None) -> int:
    """How deeply arrays and objects nest in the JSON text ``body`` (0 for a scalar).

    Counting stops once the depth exceeds ``limit`` (then ``limit + 1`` is returned).
    Brackets inside strings do not count; malformed JSON gets a best-effort figure (the
    parser reports it). No recursion; one step per bracket (a few ms for a megabyte of
    typical JSON).
    """
    # Drop escaped backslashes, then escaped quotes: every quote left opens or closes a string.
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Keep quotes and brackets only, then drop adjacent quote pairs: an empty string, or the
    # end of one string and the start of the next (nothing outside them between) -- neither
    # changes which brackets are outside strings. Quotes left enclose brackets (rare).
    text = text.translate(None, _NOT_SYNTAX).replace(b'""', b"")
    if b'"' in text:
        text = b"".join(text.split(b'"')[::2])
    steps = accumulate(map(_STEP.__getitem__, text))
    if limit is None:
        return max(steps, default=0)
    deepest = 0
    for depth in steps:
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _json(value: Any) -> Any:
    error = json_text_error(value)
    if error is not None:
        _raise(error)
    return value


Line = Annotated[str, AfterValidator(_line)]
"""One line of text: no control character (C0, DEL, C1) and no unpaired surrogate."""

Text = Annotated[str, AfterValidator(_text)]
"""Free text: tab, LF and CR allowed; other control characters and unpaired surrogates not."""

TextValues = AfterValidator(_json)
"""Metadata for ``Annotated[X, TextValues]``: every string in a value of type X (a union with
``str``, a container) follows :data:`Text`; reported once for the field, not per union member."""

JsonText = Annotated[Any, TextValues]
"""Any JSON value whose strings (keys included) are valid :data:`Text`."""
