"""What a bpftrace version accepts and how it behaves, in one place, chosen from the detected version.

The facts, and where they come from:

- Tracepoint fields: ``args->field`` up to 0.18; 0.19 made ``args`` a record (bpftrace PR #2578), read as
  ``args.field``, and the tutorials say to write it so (bpftrace PRs #3121, #3124).
- String arguments: 0.17 refuses a string literal argument over 64 bytes (a format string may be longer, so
  constant text goes in the format). 0.21 keeps strings off the BPF stack ("Support big strings", bpftrace PR
  #3228), which lifted the limit to about 1 KiB.
- printf conversions: the ones gpttrace's programs use, which every version since 0.17 accepts.
- The END-wait cut: after END, 0.17 reads its buffers until an epoll_wait of 100 ms finds nothing, and a
  SIGINT ends that wait (run/endings.py); the program prints a marker last in END so the runner knows when
  (run/bpftrace.py's with_end_marker). Measured on 0.17 only: other versions run without the marker.

An unknown version (bpftrace missing, or its ``--version`` unreadable) gets 0.17's dialect, the oldest that
gpttrace writes for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

Version = tuple[int, int, int]

OLDEST: Version = (0, 17, 0)
ARGS_RECORD_SINCE: Version = (0, 19, 0)  # bpftrace PR #2578
BIG_STRINGS_SINCE: Version = (0, 21, 0)  # bpftrace PR #3228
END_WAIT_CUT_BEFORE: Version = (0, 18, 0)  # the 100 ms wait after END, measured on 0.17


@dataclass(frozen=True)
class Dialect:
    version: Version
    string_arg_max: int  # bytes of a string literal passed as an argument (printf's, a map value's)
    printf_conversions: frozenset[str]  # the conversions gpttrace writes that this version accepts
    tracepoint_args: str  # how a tracepoint field is read: "args->" (then the field's name) or "args."
    end_wait_cut: bool  # the END marker and the SIGINT that cuts the wait after END apply

    def field(self, name: str) -> str:
        """A tracepoint field, as this version reads it (``name`` is an identifier already checked)."""
        return f"{self.tracepoint_args}{name}"


PRINTF_CONVERSIONS = frozenset({"%s", "%ld", "0x%lx", "%04o"})


def parse_version(text: str | None) -> Version | None:
    """'0.17.0', 'v0.21.2', '0.20' → a tuple; None when there is no version in it."""
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@lru_cache(maxsize=8)
def dialect_for(version: str | None) -> Dialect:
    """The dialect of bpftrace ``version`` (as kernel.features.bpftrace_version gives it; None: unknown)."""
    v = parse_version(version) or OLDEST
    return Dialect(
        version=v,
        string_arg_max=1024 if v >= BIG_STRINGS_SINCE else 64,
        printf_conversions=PRINTF_CONVERSIONS,
        tracepoint_args="args." if v >= ARGS_RECORD_SINCE else "args->",
        end_wait_cut=v < END_WAIT_CUT_BEFORE,
    )


def installed() -> Dialect:
    """The dialect of the bpftrace found here (GPTTRACE_BPFTRACE, the PATH): its version is read once per
    binary and remembered (kernel.features.bpftrace_version)."""
    from ..kernel.features import bpftrace_version, find_bpftrace

    path = find_bpftrace()
    return dialect_for(bpftrace_version(path) if path else None)
