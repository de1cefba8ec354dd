"""Units: time in nanoseconds, sizes in bytes. The one table of factors and of the words that name them.

The planners read a unit from a request through ``TIME_WORDS``/``SIZE_WORDS``; the renderers scale timer
periods and latencies through ``NS``; the edits rescale a program through ``NS`` and ``name_of``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Nanoseconds in one of each time unit a spec may name (``ProgramSpec.unit``, timer probe units).
NS: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

# Every way of writing a time unit, by the unit it names.
TIME_WORDS: dict[str, tuple[str, ...]] = {
    "ns": ("ns", "nsec", "nsecs", "nanosecond", "nanoseconds"),
    "us": ("us", "µs", "usec", "usecs", "microsecond", "microseconds"),
    "ms": ("ms", "msec", "msecs", "millisecond", "milliseconds"),
    "s": ("s", "sec", "secs", "second", "seconds"),
}
TIME_WORD: dict[str, str] = {w: u for u, ws in TIME_WORDS.items() for w in ws}

# Bytes in each size unit, by every way of writing it (binary multiples: "64 KB" is 65536 bytes). Not "m" or "g"
# ("over 5 m" may be minutes), nor the singular "kilobyte", "megabyte", "gigabyte": the planners never read them.
SIZE_WORDS: dict[str, int] = {
    "b": 1, "byte": 1, "bytes": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "kilobytes": 1 << 10,
    "mb": 1 << 20, "mib": 1 << 20, "megabytes": 1 << 20,
    "gb": 1 << 30, "gib": 1 << 30, "gigabytes": 1 << 30,
}


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


TIME_WORD_RE = _alternation(TIME_WORD)  # for a regex: (?:TIME_WORD_RE)\b
SIZE_WORD_RE = _alternation(SIZE_WORDS)


def time_unit(word: str) -> str | None:
    """The unit ("ns", "us", "ms", "s") a word names, or None."""
    return TIME_WORD.get(word.lower()) or TIME_WORD.get(word)


def ns(word: str) -> int | None:
    """Nanoseconds in the unit a word names, or None."""
    u = time_unit(word)
    return NS[u] if u else None


def name_of(factor: int) -> str:
    """The unit whose nanoseconds are ``factor`` ("ns" when none is)."""
    return next((u for u, f in NS.items() if f == factor), "ns")
