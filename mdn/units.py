"""Quantities as users type them on the command line: durations (90s, 9m, 1h30m)."""

from __future__ import annotations

import re

from mdn.errors import MdnError


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
