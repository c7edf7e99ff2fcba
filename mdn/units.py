"""Quantities as users type them on the command line (durations: 90s, 9m, 1h30m), and the kinds of value the
API's callers give (`is_kind`)."""

from __future__ import annotations

import numbers
import re

import numpy as np

from mdn.errors import MdnError

KIND_WORDS = {bool: "True or False", int: "a whole number", float: "a number", str: "text"}
"""How a message names each kind of value."""


def is_kind(value: object, kind: type) -> bool:
    """Whether a caller's value is of `kind`: bool (numpy's too); int, any whole number (numpy's too) but a bool;
    float, any real number but a bool; else an instance of `kind`."""
    if kind is bool:
        return isinstance(value, bool | np.bool_)
    if kind in (int, float):
        numeric = numbers.Integral if kind is int else numbers.Real
        return isinstance(value, numeric) and not isinstance(value, bool | np.bool_)
    return isinstance(value, kind)


def parse_duration(text: str | float) -> float:
    """Seconds in a duration such as 90, 90s, 9m, 1h30m or 2.5h (a number is seconds already); never negative."""
    if not isinstance(text, str):
        seconds = float(text)
    else:
        parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d*)?)h)?\s*(?:(\d+(?:\.\d*)?)m)?\s*(?:(\d+(?:\.\d*)?)s?)?\s*", text)
        if not parts or not any(parts.groups()):
            raise MdnError(f"expected a duration such as 90s, 9m or 1h30m, got {text!r}")
        hours, minutes, seconds = (float(g or 0) for g in parts.groups())
        seconds += 3600 * hours + 60 * minutes
    if not seconds >= 0:
        raise MdnError(f"a duration cannot be negative, got {text!r}")
    return seconds
