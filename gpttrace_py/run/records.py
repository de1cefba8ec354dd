"""Turn what a tracing program emits (bpftrace's ``-f json`` records) into what the user sees.

Text mode prints events as the program formats them and aggregates as labelled tables and histograms
in bpftrace's familiar layout. JSON mode prints one object per event and per aggregate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ..render.program import ProgramLayout


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
            n = int(data.get("events", 0))
            self.lost += n
            self.warn(f"{n} events lost (the kernel buffer was full); aggregate in the kernel instead of printing each event")
        elif kind in ("map", "hist", "stats") and isinstance(data, dict):
            for name, value in data.items():
                self._aggregate(kind, str(name), value)
        elif kind == "value":
            self._emit_text(str(data), {"type": "value", "value": data})

    # -- events --------------------------------------------------------------------------------------
    def _printf(self, text: str) -> None:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._line(line)

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
        if self.json_mode:
            self.write(json.dumps({"type": "event", **self.layout.parse_event(line)}))
        else:
            self.write(line)

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
        self.aggregates_seen.append(name)
        if self.json_mode:
            self.write(json.dumps({"type": "aggregate", "name": name.lstrip("@"), "func": agg.func if agg else kind,
                                   "keys": key_labels, "data": value}))
            return
        if kind == "hist":
            if isinstance(value, list):
                self.write("\n".join(format_histogram(value, linear)))
            elif isinstance(value, dict):
                for key, buckets in value.items():
                    self.write(self._key_text(key, key_labels) + ":")
                    self.write("\n".join(format_histogram(buckets, linear)))
            return
        if not isinstance(value, dict):
            self.write(f"{value_label}: {_fmt_value(value)}")
            return
        rows = sorted(value.items(), key=lambda kv: _sort_value(kv[1]))
        if any("\n" in k for k, _ in rows):  # stacks: print each, then its count
            for key, v in rows:
                self.write(key.rstrip("\n") if key.startswith("\n") else key)
                self.write(f"    {value_label.lower()}: {_fmt_value(v)}\n")
            return
        names = agg.key_names if agg else []
        cells = [(_named(_key_parts(k, max(1, len(key_labels))), names), _fmt_value(v)) for k, v in rows]
        labels = key_labels or ["KEY"]
        widths = [max([len(lab)] + [len(c[0][i]) for c in cells]) for i, lab in enumerate(labels)]
        vwidth = max([len(value_label)] + [len(c[1]) for c in cells])
        self.write("  ".join(lab.ljust(w) for lab, w in zip(labels, widths)) + "  " + value_label.rjust(vwidth))
        for parts, v in cells:
            self.write("  ".join(p.ljust(w) for p, w in zip(parts, widths)) + "  " + v.rjust(vwidth))

    @staticmethod
    def _key_text(key: str, labels: list[str]) -> str:
        parts = _key_parts(key, max(1, len(labels)))
        if not labels:
            return key
        return ", ".join(f"{lab}={p}" for lab, p in zip(labels, parts))


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
