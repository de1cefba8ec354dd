"""Turn what a tracing program emits (bpftrace's ``-f json`` records) into what the user sees.

Text mode prints events as the program formats them and aggregates as labelled tables and histograms
in bpftrace's familiar layout. JSON mode prints one object per event and per aggregate.

Floods. When events arrive faster than ``max_rate`` per second for ``sustain`` seconds in a row, the Printer
says so once on stderr and suggests an aggregation. What happens to the lines then depends on where they go:

* to a terminal (``drop_over_rate``): at most ``max_rate`` event lines are printed per second; the rest are
  counted (``dropped``) and the count is reported at the end. Before that (a burst), a second shows at most
  ``BURST * max_rate`` lines. Nobody reads 50,000 lines a second, and a
  terminal that cannot keep up would otherwise stall Ctrl-C and everything behind it.
* to a file or a pipe: every line is written. Nothing is queued here either: when the reader is slower
  than the tracer, the kernel drops events and bpftrace reports them (``lost_events``), shown as warnings
  (the first at once, then at most one every ``LOST_WARN_EVERY`` seconds) and as a total at the end.

Headers, aggregate titles and aggregates are never dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..render.program import ProgramLayout
from ..terminal import escape

LOST_WARN_EVERY = 5.0  # seconds between "events lost" warnings after the first
BURST = 10  # on a terminal, a second may show BURST * max_rate lines before a flood is declared


def human(n: int) -> str:
    """bpftrace's bucket labels: 1024 → 1K, 1536 → 1536, 1048576 → 1M."""
    for suffix, size in (("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n and n % size == 0 and abs(n) >= size:
            return f"{n // size}{suffix}"
    return str(n)


def format_histogram(buckets: list[dict[str, int]], linear: bool = False) -> list[str]:
    if not buckets:
        return []
    top = max((b.get("count", 0) for b in buckets), default=0) or 1
    lines = []
    for b in buckets:
        lo, hi, count = b.get("min"), b.get("max"), b.get("count", 0)
        if lo is None:
            label = f"(..., {human(hi + 1 if hi is not None else 0)})"
        elif hi is None:
            label = f"[{human(lo)}, ...)"
        elif not linear and lo == hi:
            label = f"[{human(lo)}]"
        else:
            label = f"[{human(lo)}, {human(hi + 1)})"
        bar = "@" * round(52 * count / top)
        lines.append(f"{label:<16} {count:>8} |{bar:<52}|")
    return lines


def _key_parts(key: str, n: int) -> list[str]:
    if n <= 1:
        return [key]
    parts = key.split(",", n - 1)
    return parts + [""] * (n - len(parts))


@dataclass
class Printer:
    """Receives decoded records and writes text or JSON through ``write`` (one call per output line)."""

    layout: ProgramLayout
    write: Callable[[str], None]
    json_mode: bool = False
    warn: Callable[[str], None] = lambda s: None
    events: int = 0
    lost: int = 0
    attached: int | None = None
    _pending: str = ""
    _header_done: bool = False
    aggregates_seen: list[str] = field(default_factory=list)
    ready: bool = False
    on_ready: Callable[[], None] | None = None
    # floods (see the module docstring)
    max_rate: float | None = None
    drop_over_rate: bool = False
    sustain: int = 2  # seconds in a row above max_rate before it counts as a flood
    overload_hint: str = 'count the events in the kernel instead, e.g. gpttrace "count ... by process"'
    dropped: int = 0
    overloaded: bool = False
    clock: Callable[[], float] = time.monotonic
    # the session log: every event line, and every aggregate and lost-events record, as they arrive
    log_line: Callable[[str], None] | None = None
    log_record: Callable[..., None] | None = None
    _window: int = -1
    _window_count: int = 0
    _hot: int = 0
    _t0: float | None = None
    _lost_reported: int = 0
    _lost_warned_at: float | None = None

    def handle(self, record: dict[str, object]) -> None:
        kind = record.get("type")
        data = record.get("data")
        if kind == "attached_probes" and isinstance(data, dict):
            self.attached = int(data.get("probes", 0))
        elif kind == "printf" and isinstance(data, str):
            self._printf(data)
        elif kind == "join" and isinstance(data, str):
            self._printf(data + "\n")
        elif kind == "time" and isinstance(data, str):
            self._emit_text(data.rstrip("\n"), {"type": "time", "time": data.strip()})
        elif kind == "lost_events" and isinstance(data, dict):
            self._lost(int(data.get("events", 0) or 0))
        elif kind in ("map", "hist", "stats") and isinstance(data, dict):
            for name, value in data.items():
                self._aggregate(kind, str(name), value)
        elif kind == "value":
            self._emit_text(escape(data), {"type": "value", "value": data})

    # -- events --------------------------------------------------------------------------------------
    def _printf(self, text: str) -> None:
        """One printf record is one line: only its final newline ends it, so a newline inside a value (a file
        name) stays in that value instead of starting a forged event. A record without a final newline (the
        columns before a join()) waits for the next one."""
        self._pending += text
        if self._pending.endswith("\n"):
            line, self._pending = self._pending[:-1], ""
            self._line(line)
        elif len(self._pending) > 1 << 20:  # no end in 1 MiB: cut it
            self._line(self._pending)
            self._pending = ""

    def _line(self, line: str) -> None:
        if not self.ready and line == self.layout.ready:
            self.ready = True
            self.warn(line)
            if self.on_ready:
                self.on_ready()
            return
        if not self._header_done and self.layout.header and line == self.layout.header:
            self._header_done = True
            if not self.json_mode:
                self.write(line)
            return
        if line.strip() in self.layout.titles or (line == "" and self.json_mode):
            if not self.json_mode:
                self.write(line)
            return
        self.events += 1
        if self.log_line is not None:
            self.log_line(self.layout.text(line))  # the log keeps the value; `log show` escapes it
        if self.max_rate and not self._rate_allows():
            self.dropped += 1
            return
        if self.json_mode:
            self.write(json.dumps({"type": "event", **self.layout.parse_event(line)}))
        else:
            self.write(escape(self.layout.text(line)))

    def _rate_allows(self) -> bool:
        """Count the event in its one-second window; False when it is over the cap in a flood on a terminal."""
        assert self.max_rate is not None  # called only with a cap
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        window = int(now - self._t0)
        if window != self._window:
            hot = self._window_count > self.max_rate
            self._hot = self._hot + 1 if hot and window == self._window + 1 else (1 if hot else 0)
            if self._hot >= self.sustain and not self.overloaded:
                self.overloaded = True
                self._flood_warning(self._window_count)
            self._window, self._window_count = window, 0
        self._window_count += 1
        if not self.drop_over_rate:
            return True
        limit = self.max_rate if self.overloaded else self.max_rate * BURST
        return self._window_count <= limit

    def _flood_warning(self, rate: int) -> None:
        cap = f"{self.max_rate:g}"
        if self.drop_over_rate:
            self.warn(f"gpttrace: about {rate} events/s, more than a terminal can show: printing at most {cap} "
                      "a second and counting the rest.")
        else:
            self.warn(f"gpttrace: about {rate} events/s; every one is written, but the kernel drops what is not "
                      f"read in time (reported as lost events).")
        self.warn(f"  To see all of them, {self.overload_hint}")

    def _lost(self, n: int) -> None:
        self.lost += n
        if self.log_record is not None:
            self.log_record("lost_events", events=n)
        now = self.clock()
        if self._lost_warned_at is None:
            self.warn(f"{n} events lost (the kernel buffer was full); "
                      "aggregate in the kernel instead of printing each event")
        elif now - self._lost_warned_at >= LOST_WARN_EVERY:
            self.warn(f"{self.lost - self._lost_reported} more events lost ({self.lost} in all)")
        else:
            return
        self._lost_warned_at = now
        self._lost_reported = self.lost

    def finish(self) -> None:
        """At the end of a run: totals of what was lost or not shown."""
        if self.lost:
            self.warn(f"{self.lost} events lost in all (the kernel buffer was full)")
            self._lost_reported = self.lost
        if self.dropped:
            self.warn(f"{self.dropped} of {self.events} events were not shown (more than {self.max_rate:g} a second "
                      f"on a terminal); redirect the output to a file to keep every line")

    def _emit_text(self, text: str, obj: dict[str, object]) -> None:
        self.write(json.dumps(obj) if self.json_mode else text)

    def flush(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""

    # -- aggregates ----------------------------------------------------------------------------------
    def _aggregate(self, kind: str, name: str, value: object) -> None:
        agg = self.layout.aggregates.get(name.lstrip("@"))
        key_labels = agg.key_labels if agg else []
        value_label = agg.value_label if agg else "VALUE"
        linear = bool(agg and agg.func == "lhist")
        if name not in self.aggregates_seen:
            self.aggregates_seen.append(name)
        if self.log_record is not None:
            self.log_record("aggregate", name=name.lstrip("@"), func=agg.func if agg else kind, keys=key_labels,
                            data=value)
        if self.json_mode:
            self.write(json.dumps({"type": "aggregate", "name": name.lstrip("@"), "func": agg.func if agg else kind,
                                   "keys": key_labels, "data": value}))
            return
        if kind == "hist":
            if isinstance(value, list):
                self.write("\n".join(format_histogram(value, linear)))
            elif isinstance(value, dict):
                for key, buckets in value.items():
                    self.write(escape(self._key_text(key, key_labels)) + ":")
                    self.write("\n".join(format_histogram(buckets, linear)))
            return
        if not isinstance(value, dict):
            self.write(f"{value_label}: {_fmt_value(value)}")
            return
        rows = sorted(value.items(), key=lambda kv: _sort_value(kv[1]))
        if any("\n" in k for k, _ in rows):  # stacks: print each, then its count
            for key, v in rows:
                self.write(escape(key.rstrip("\n") if key.startswith("\n") else key, keep_newlines=True))
                self.write(f"    {value_label.lower()}: {_fmt_value(v)}\n")
            return
        names = agg.key_names if agg else []
        cells = [([escape(p) for p in _named(_key_parts(k, max(1, len(key_labels))), names)], _fmt_value(v))
                 for k, v in rows]
        labels = key_labels or ["KEY"]
        widths = [max([len(lab)] + [len(c[0][i]) for c in cells]) for i, lab in enumerate(labels)]
        vwidth = max([len(value_label)] + [len(c[1]) for c in cells])
        head = "  ".join(lab.ljust(w) for lab, w in zip(labels, widths, strict=False))
        self.write(head + "  " + value_label.rjust(vwidth))
        for parts, v in cells:
            self.write("  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=False)) + "  " + v.rjust(vwidth))

    @staticmethod
    def _key_text(key: str, labels: list[str]) -> str:
        parts = _key_parts(key, max(1, len(labels)))
        if not labels:
            return key
        return ", ".join(f"{lab}={p}" for lab, p in zip(labels, parts, strict=False))


def _named(parts: list[str], names: list[dict[int, str] | None]) -> list[str]:
    out = []
    for i, p in enumerate(parts):
        table = names[i] if i < len(names) else None
        if table and p.strip().lstrip("-").isdigit():
            out.append(table.get(int(p), p))
        else:
            out.append(p)
    return out


def _fmt_value(v: object) -> str:
    if isinstance(v, dict):
        return "  ".join(f"{k}={v[k]}" for k in ("count", "average", "total") if k in v)
    return str(v)


def _sort_value(v: object) -> float:
    if isinstance(v, dict):
        return float(v.get("count", 0) or 0)
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
