"""What a client gets back is bounded (lines, bytes; truncation reported) and free of control characters.

Events carry text from traced processes (file names, command names), which may hold escape sequences or
bidirectional overrides meant for a terminal or a reader; none reaches a client as it came.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

EVENT_BYTES = 128 * 1024  # events returned by one run, all together (JSON)
AGGREGATE_BYTES = 128 * 1024  # aggregates returned by one run, all together (JSON)
AGGREGATE_ENTRIES = 200  # keys kept of one map (the largest values), or histograms of one keyed histogram
TEXT_BYTES = 64 * 1024  # a program, an explanation, a resource
MESSAGES = 40  # the tracer's messages kept (the last ones)

# C0 and C1 controls, DEL, line/paragraph separators, bidirectional embeddings/overrides/isolates
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # keeps \t \n


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean(text: str, multiline: bool = False) -> str:
    """``text`` with control characters written as escapes (``\\x1b``); ``multiline`` keeps newlines and tabs."""
    return (_CONTROL_TEXT if multiline else _CONTROL).sub(_escape, text)


def clean_value(value: Any) -> Any:
    """A JSON value with every string in it (keys too) cleaned."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k)): clean_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    return value


def clip(text: str, max_bytes: int = TEXT_BYTES) -> tuple[str, bool]:
    """Multiline text cleaned and cut to ``max_bytes`` (UTF-8); whether it was cut."""
    text = clean(text, multiline=True)
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, False
    cut = data[:max_bytes].decode("utf-8", "ignore")
    return cut + f"\n[... cut at {max_bytes} bytes of {len(data)}]", True


class Event(BaseModel):
    line: str = Field(description="The event as the program printed it (control characters escaped)")
    fields: dict[str, str | int] | None = Field(
        default=None, description="The same line split into the program's labelled columns, when it has them")


class Aggregate(BaseModel):
    name: str = Field(description="The map's name")
    func: str = Field(description="count, sum, avg, min, max, hist, lhist, stats...")
    keys: list[str] = Field(default_factory=list, description="Labels of the map's keys")
    data: Any = Field(description="The map as bpftrace -f json prints it: {key: value}, a histogram's buckets, "
                                  "or {key: buckets}")
    entries: int = Field(description="How many keys (or buckets) the map had")
    truncated: bool = Field(default=False, description="Only the largest entries are in data")


@dataclass
class Collector:
    """Receives the runner's JSON output lines (``--json``: one event or aggregate per line) and keeps what
    fits: at most ``max_lines`` events and EVENT_BYTES of them; aggregates within their own budget, so that a
    flood of events never crowds out the totals printed at the end."""

    max_lines: int
    events: list[Event] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    events_seen: int = 0
    events_truncated: bool = False
    aggregates_truncated: bool = False
    _event_bytes: int = 0
    _aggregate_bytes: int = 0

    def line(self, text: str) -> None:
        try:
            record = json.loads(text)
        except ValueError:
            record = {"type": "event", "line": text}
        if not isinstance(record, dict):
            return
        kind = record.get("type")
        if kind == "aggregate":
            self._aggregate(record)
        elif kind == "event":
            self._event(str(record.get("line", "")), record.get("fields"))
        elif kind in ("time", "value"):
            self._event(str(record.get(kind, "")), None)
        # the plan record ({"type": "plan"}) is returned on its own

    def _event(self, line: str, fields: object) -> None:
        self.events_seen += 1
        if self.events_truncated:
            return
        event = Event(line=clean(line), fields=clean_value(fields) if isinstance(fields, dict) else None)
        size = len(event.model_dump_json())
        if len(self.events) >= self.max_lines or self._event_bytes + size > EVENT_BYTES:
            self.events_truncated = True
            return
        self.events.append(event)
        self._event_bytes += size

    def _aggregate(self, record: dict[str, Any]) -> None:
        data = record.get("data")
        entries = len(data) if isinstance(data, dict | list) else 1
        kept = data
        if isinstance(data, dict) and len(data) > AGGREGATE_ENTRIES:
            kept = dict(sorted(data.items(), key=lambda kv: _magnitude(kv[1]), reverse=True)[:AGGREGATE_ENTRIES])
        agg = Aggregate(name=clean(str(record.get("name", ""))), func=clean(str(record.get("func", ""))),
                        keys=[clean(str(k)) for k in record.get("keys") or []], data=clean_value(kept),
                        entries=entries, truncated=kept is not data)
        size = len(agg.model_dump_json())
        while size + self._aggregate_bytes > AGGREGATE_BYTES and isinstance(agg.data, dict) and len(agg.data) > 1:
            agg.data = dict(list(agg.data.items())[: len(agg.data) // 2])
            agg.truncated = True
            size = len(agg.model_dump_json())
        if size + self._aggregate_bytes > AGGREGATE_BYTES:
            self.aggregates_truncated = True
            return
        self.aggregates.append(agg)
        self._aggregate_bytes += size
        self.aggregates_truncated = self.aggregates_truncated or agg.truncated


def _magnitude(value: object) -> float:
    if isinstance(value, dict):
        value = value.get("count", value.get("total", 0))
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
