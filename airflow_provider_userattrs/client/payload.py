"""JSON that carries numbers exactly: a warehouse's ``Decimal`` goes out with its own digits.

``json`` cannot write a :class:`~decimal.Decimal`, and turning one into a float changes it
(``12345678901234567.12`` arrives as ``1.2345678901234568e+16``). JSON numbers are arbitrary precision, so
a Decimal is written as its exact digits, without exponent (``1E+21`` as ``1000000000000000000000``).
Reading back (a failure file being replayed) gives Decimals again for numbers with a fraction, so a value
keeps its digits however often it travels.
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

MAX_DIGITS = 1000
"""Digits a number may have to be sent (a Decimal of ``1E+5000`` would be written as 5,001 characters, and an
integer of more than 4,300 digits cannot be written by Python at all): beyond it, the value is refused."""


def exact_text(value: Decimal) -> str:
    """A finite Decimal's digits, without exponent: ``Decimal("1E+21")`` -> ``"1000000000000000000000"``."""
    return format(value, "f")


def too_many_digits(value: int | Decimal) -> bool:
    """Whether ``value`` is beyond :data:`MAX_DIGITS` (checked without writing it out)."""
    if isinstance(value, int):
        return value.bit_length() > MAX_DIGITS * 3.33  # log2(10) bits a digit
    digits, exponent = len(value.as_tuple().digits), int(value.as_tuple().exponent)
    return digits + max(exponent, 0) > MAX_DIGITS or -exponent > MAX_DIGITS


def dumps(value: Any, *, ensure_ascii: bool = True) -> str:
    """``json.dumps`` with Decimals as exact JSON numbers (NaN and infinities refused, as JSON has none)."""
    numbers: list[str] = []
    nonce = secrets.token_hex(6)

    def default(item: Any) -> Any:
        if isinstance(item, Decimal) and item.is_finite():
            numbers.append(exact_text(item))
            return f"\x00{nonce}:{len(numbers) - 1}\x00"
        raise TypeError(f"{type(item).__name__} values have no JSON form")

    text = json.dumps(value, allow_nan=False, default=default, ensure_ascii=ensure_ascii)
    if not numbers:
        return text
    marker = re.compile(r'"(?:\\u0000|\x00)' + nonce + r":(\d+)(?:\\u0000|\x00)\"")
    return marker.sub(lambda match: numbers[int(match.group(1))], text)


def loads(text: str | bytes) -> Any:
    """``json.loads`` reading numbers with a fraction or an exponent as exact Decimals."""
    return json.loads(text, parse_float=Decimal)
