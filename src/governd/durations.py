"""Human durations (``90s``, ``15m``, ``12h``, ``30d``, ``2w``) and times (``since``)."""

from __future__ import annotations

import re
from datetime import datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``ValueError`` naming the accepted forms."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"invalid duration {text!r}: expected a number with s, m, h, d or w, e.g. 30d"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that divides it (``3600`` -> ``1h``), as configs write it."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_since(text: str, now: float) -> float:
    """A point in time: a duration ago (``15m``), epoch seconds, or an ISO 8601 timestamp."""
    if _DURATION.match(text) and text.strip()[-1].isalpha():
        return now - parse_duration(text)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: expected a duration ago (15m), epoch seconds or ISO 8601"
        ) from None
    if stamp.tzinfo is None:
        raise ValueError(f"invalid time {text!r}: an ISO 8601 time needs a timezone (e.g. Z)")
    return stamp.timestamp()
