"""The program spec: the contract between planners, renderers and runners.

A planner (offline or LLM) fills a ProgramSpec; pydantic checks it against the grammar here; the
catalog then checks it against the live kernel; a renderer turns it into a bpftrace script or a BCC
program. Every string that ends up in program text is either an identifier matched by a pattern, a
probe name matched by a pattern, an expression parsed by ``expr``, or free text that the renderers
escape (titles, labels).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_serializer, model_validator

from . import expr as E
from .kinds import ALIASES, HARDWARE_EVENTS, RETURN_KINDS, SOFTWARE_EVENTS, SPEC_KINDS, ProbeKind

_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
_PATH = r"[A-Za-z0-9_./+@-]{1,255}"
_IFACE = r"[A-Za-z0-9_.-]{1,15}"
_PROBE_PATTERNS: dict[str, re.Pattern[str]] = {
    "tracepoint": re.compile(rf"(?P<category>{_NAME}):(?P<name>{_NAME})"),
    "rawtracepoint": re.compile(rf"(?P<name>{_NAME})"),
    "uprobe": re.compile(rf"(?P<target>{_PATH}):(?P<name>{_NAME})"),
    "uretprobe": re.compile(rf"(?P<target>{_PATH}):(?P<name>{_NAME})"),
    "usdt": re.compile(rf"(?P<target>{_PATH}):(?P<category>{_NAME}):(?P<name>{_NAME})"),
    "kprobe": re.compile(rf"(?P<name>{_NAME})"),
    "kretprobe": re.compile(rf"(?P<name>{_NAME})"),
    "kfunc": re.compile(rf"(?P<name>{_NAME})"),
    "kretfunc": re.compile(rf"(?P<name>{_NAME})"),
    "lsm": re.compile(rf"(?P<name>{_NAME})"),
    "profile": re.compile(r"(?P<unit>hz|s|ms|us):(?P<rate>[1-9][0-9]{0,5})"),
    "interval": re.compile(r"(?P<unit>s|ms|us):(?P<rate>[1-9][0-9]{0,5})"),
    "software": re.compile(r"(?P<name>[a-z-]{2,24})(?::(?P<rate>[1-9][0-9]{0,8}))?"),
    "hardware": re.compile(r"(?P<name>[a-z-]{2,24})(?::(?P<rate>[1-9][0-9]{0,9}))?"),
    "xdp": re.compile(rf"(?P<target>{_IFACE})"),
    "tc": re.compile(rf"(?P<target>{_IFACE}):(?P<name>ingress|egress)"),
}


def probe_text_pattern() -> str:
    """A regular expression (JSON Schema dialect: no named groups) that every probe's text form matches; what
    ``probe_parts`` accepts, less aliases and the event-name checks."""
    forms = ["BEGIN", "END"]
    for kind, pattern in _PROBE_PATTERNS.items():
        forms.append(f"{kind}:" + re.sub(r"\(\?P<\w+>", "(", pattern.pattern).replace("(?:", "("))
    return "^(" + "|".join(forms) + ")$"


class ProbeRef(BaseModel):
    """One attach point, written like bpftrace's probe names: ``tracepoint:syscalls:sys_enter_openat``,
    ``uprobe:libc:malloc``, ``profile:hz:49``, ``interval:s:1``, ``software:page-faults:1``, ``BEGIN``."""

    model_config = ConfigDict(frozen=True)

    kind: ProbeKind
    category: str | None = None
    name: str | None = None
    target: str | None = None
    unit: str | None = None
    rate: int | None = None

    @model_validator(mode="before")
    @classmethod
    def from_text(cls, value: object) -> object:
        if isinstance(value, ProbeRef):
            return value
        if isinstance(value, str):
            return probe_parts(value)
        return value

    @model_validator(mode="after")
    def check_consistency(self) -> ProbeRef:
        # A structured form must say the same as its text form, so round-trip it through the parser.
        again = probe_parts(self.text)
        if again["kind"] != self.kind:
            raise ValueError(f"inconsistent probe {self.text!r}")
        return self

    @model_serializer
    def to_text(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        k = self.kind
        if k in ("BEGIN", "END"):
            return k
        if k == "tracepoint":
            return f"tracepoint:{self.category}:{self.name}"
        if k in ("uprobe", "uretprobe"):
            return f"{k}:{self.target}:{self.name}"
        if k == "usdt":
            return f"usdt:{self.target}:{self.category}:{self.name}"
        if k in ("profile", "interval"):
            return f"{k}:{self.unit}:{self.rate}"
        if k in ("software", "hardware"):
            return f"{k}:{self.name}:{self.rate or 1}" if k == "software" else f"{k}:{self.name}:{self.rate or 1000000}"
        if k == "xdp":
            return f"xdp:{self.target}"
        if k == "tc":
            return f"tc:{self.target}:{self.name}"
        return f"{k}:{self.name}"

    @property
    def is_syscall_enter(self) -> bool:
        return self.kind == "tracepoint" and self.category == "syscalls" and (self.name or "").startswith("sys_enter_")

    @property
    def is_syscall_exit(self) -> bool:
        return self.kind == "tracepoint" and self.category == "syscalls" and (self.name or "").startswith("sys_exit_")

    @property
    def is_return(self) -> bool:
        return self.kind in RETURN_KINDS

    def __str__(self) -> str:
        return self.text


def parse_probe(text: str) -> ProbeRef:
    return ProbeRef.model_validate(text)


def probe_parts(text: str) -> dict[str, object]:
    """Parse ``kind:rest`` probe text, raising ValueError with the accepted forms."""
    if not isinstance(text, str):
        raise ValueError("a probe must be text like tracepoint:syscalls:sys_enter_openat")
    text = text.strip()
    if text in ("BEGIN", "END", "begin", "end"):
        return {"kind": ALIASES.get(text, text)}
    kind, _, rest = text.partition(":")
    kind = ALIASES.get(kind, kind)
    if kind not in _PROBE_PATTERNS:
        raise ValueError(f"unknown probe kind {kind!r} in {text[:80]!r}; kinds: {', '.join(SPEC_KINDS)}")
    if kind == "uprobe" and rest.count(":") == 0:
        raise ValueError(f"a uprobe is uprobe:LIBRARY_OR_PATH:SYMBOL, got {text[:80]!r}")
    m = _PROBE_PATTERNS[kind].fullmatch(rest)
    if not m:
        raise ValueError(f"malformed {kind} probe {text[:80]!r}")
    groups: dict[str, str] = {k: v for k, v in m.groupdict().items() if v is not None}
    rate = int(groups["rate"]) if "rate" in groups else None
    parts: dict[str, object] = {k: rate if k == "rate" else v for k, v in groups.items()}
    if kind == "software" and groups["name"] not in SOFTWARE_EVENTS:
        raise ValueError(f"unknown software event {groups['name']!r}; known: {', '.join(SOFTWARE_EVENTS)}")
    if kind == "hardware" and groups["name"] not in HARDWARE_EVENTS:
        raise ValueError(f"unknown hardware event {groups['name']!r}; known: {', '.join(HARDWARE_EVENTS)}")
    if kind == "profile" and groups.get("unit") == "hz" and rate is not None and rate > 10000:
        raise ValueError("profile frequency above 10000 Hz is refused (it would swamp the machine)")
    return {"kind": kind, **parts}


def _check_expr(value: str) -> str:
    try:
        E.parse(value)
    except E.ExprError as exc:
        raise ValueError(f"bad expression {value[:80]!r}: {exc}") from None
    return value


def _check_ident(value: str) -> str:
    if not E.IDENT_RE.match(value):
        raise ValueError(f"{value[:40]!r} is not an identifier (letters, digits, _; not starting with a digit)")
    return value


def _check_text(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t" for c in value) or "\x7f" in value:
        raise ValueError("text must not contain control characters")
    if any("\ud800" <= c <= "\udfff" for c in value):  # undecodable bytes (surrogateescape) or broken JSON
        raise ValueError("text must be valid Unicode (it has a lone surrogate, e.g. from bytes that are not UTF-8)")
    return value


Expr = Annotated[str, AfterValidator(_check_expr)]
Ident = Annotated[str, AfterValidator(_check_ident)]
Label = Annotated[str, Field(max_length=40), AfterValidator(_check_text)]
Text = Annotated[str, Field(max_length=400), AfterValidator(_check_text)]
Comm = Annotated[str, Field(min_length=1, max_length=15), AfterValidator(_check_text)]

FieldFormat = Literal["auto", "str", "int", "hex", "oct", "ip", "ksym", "usym", "stack", "names", "errno", "port"]


class OutputField(BaseModel):
    """A printed column or a map key."""

    expr: Expr
    label: Label | None = None
    format: FieldFormat = "auto"
    names: dict[int, Label] | None = Field(
        default=None, description="number → name table for this value (e.g. TCP states, signals)"
    )


class Filter(BaseModel):
    comm: Comm | None = Field(default=None, description="exact process name (as in /proc/PID/comm)")
    pid: int | None = Field(default=None, ge=1, le=4194304)
    expr: Expr | None = Field(default=None, description="any further condition")

    def is_empty(self) -> bool:
        return self.comm is None and self.pid is None and self.expr is None


class Saved(BaseModel):
    name: Ident
    expr: Expr


class Start(BaseModel):
    """The first half of a start/end pair: when one of these probes fires, save a timestamp (and values)
    under ``key``; when a main probe fires with the same key, ``delta`` and ``start.NAME`` are available."""

    probes: list[ProbeRef] = Field(min_length=1, max_length=16)
    key: list[Expr] = Field(default_factory=lambda: ["tid"], min_length=1, max_length=4)
    filter: Filter = Field(default_factory=Filter)
    save: list[Saved] = Field(default_factory=list, max_length=8)


class Lhist(BaseModel):
    min: int = 0
    max: int = Field(gt=0)
    step: int = Field(gt=0)


AggFunc = Literal["count", "sum", "avg", "min", "max", "hist", "lhist", "stats"]


class Aggregate(BaseModel):
    func: AggFunc
    value: Expr | None = None
    keys: list[OutputField] = Field(default_factory=list, max_length=4)
    lhist: Lhist | None = None
    name: Ident | None = Field(default=None, description="map name; derived when omitted")
    title: Text | None = None
    unit: Label | None = Field(default=None, description="unit of the aggregated value, for labels")
    top: int | None = Field(default=None, ge=1, le=1000, description="print only the N largest entries")
    filter: Expr | None = Field(default=None, description="extra condition for this aggregate only")

    @model_validator(mode="after")
    def check_consistency(self) -> Aggregate:
        if self.func != "count" and not self.value:
            raise ValueError(f"{self.func}() needs a value expression")
        if self.func == "count" and self.value:
            self.value = None
        if self.func == "lhist" and self.lhist is None:
            raise ValueError("lhist needs lhist: {min, max, step}")
        return self


Backend = Literal["auto", "bpftrace", "bcc"]


class ProgramSpec(BaseModel):
    """What a tracing program does, independent of the backend that will run it."""

    title: Text
    rationale: Text = Field(default="", description="why these probes, in one or two sentences")
    backend: Backend = "auto"
    probes: list[ProbeRef] = Field(
        min_length=1, max_length=32, description="the probes whose events are printed or aggregated"
    )
    start: Start | None = Field(default=None, description="start probes of a start/end pair (latency, saved arguments)")
    end_key: list[Expr] | None = Field(
        default=None, description="key at the main probes in a pair (default: start.key)"
    )
    filter: Filter = Field(default_factory=Filter)
    print: list[OutputField] = Field(default_factory=list, max_length=16)
    aggregates: list[Aggregate] = Field(default_factory=list, max_length=8)
    interval_s: int | None = Field(default=None, ge=1, le=3600, description="print and clear aggregates every N s")
    lesson: str | None = Field(default=None, max_length=8, pattern=r"^[0-9]{1,2}$")

    @model_validator(mode="after")
    def check_consistency(self) -> ProgramSpec:
        if not self.print and not self.aggregates:
            raise ValueError("a program must print fields or aggregate values (print or aggregates)")
        if self.end_key is not None and self.start is None:
            raise ValueError("end_key is only meaningful with start")
        if self.start is not None and len(self.end_key or self.start.key) != len(self.start.key):
            raise ValueError("end_key must have as many parts as start.key")
        saved = {s.name for s in self.start.save} if self.start else set()
        for text in self.expressions():
            missing = E.saved_used(text) - saved
            if missing:
                raise ValueError(f"{text!r} uses start.{sorted(missing)[0]}, which no start probe saves")
            if self.start is None and "delta" in E.builtins_used(text):
                raise ValueError(f"{text!r} uses delta, which needs start probes")
        names = [a.name for a in self.aggregates if a.name]
        if len(names) != len(set(names)):
            raise ValueError("aggregate names must differ")
        for i, agg in enumerate(self.aggregates):
            if agg.name is None:
                agg.name = _unique_name(agg, i, names)
                names.append(agg.name)
        return self

    def expressions(self) -> list[str]:
        """Every expression evaluated at the main probes."""
        out = [f.expr for f in self.print]
        for a in self.aggregates:
            out += [k.expr for k in a.keys] + ([a.value] if a.value else []) + ([a.filter] if a.filter else [])
        if self.filter.expr:
            out.append(self.filter.expr)
        out += self.end_key or []
        return out

    def start_expressions(self) -> list[str]:
        if not self.start:
            return []
        return (
            list(self.start.key)
            + [s.expr for s in self.start.save]
            + ([self.start.filter.expr] if self.start.filter.expr else [])
        )

    @property
    def all_probes(self) -> list[ProbeRef]:
        return (self.start.probes if self.start else []) + list(self.probes)


def _unique_name(agg: Aggregate, index: int, taken: list[str]) -> str:
    base = {
        "count": "count",
        "sum": "sum",
        "avg": "avg",
        "min": "min",
        "max": "max",
        "hist": "hist",
        "lhist": "lhist",
        "stats": "stats",
    }[agg.func]
    name = base if base not in taken else f"{base}{index}"
    while name in taken:
        name += "_"
    return name
