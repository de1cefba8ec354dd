"""Read a plain-language tracing question into slots: what to do, on what, filtered how, shown how.

Only words are read here; whether a named syscall or tracepoint exists is the catalog's business.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field

from ..errors import UsageError
from ..spec import units
from .intent_words import ACTIONS, GROUP_WORDS, ordinary_word
from .process_names import (
    SUBJECT_VERBS,
    original_case,
    plausible_process,
    plausible_quoted,
    process_alternatives,
)

MAX_INTENT = 2000


def checked_text(intent: str) -> str:
    """The request, stripped; refused (exit 2) when it is empty, too long, or not text: a byte that is not
    UTF-8 reaches Python as a lone surrogate, and a word cut by it would be read as another word."""
    text = intent.strip()
    bad = next((c for c in text if 0xD800 <= ord(c) <= 0xDFFF), None)
    if bad is not None:
        what = (f"the byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF
                else f"the unpaired surrogate U+{ord(bad):04X}")
        raise UsageError(f"the request is not UTF-8 text: it has {what}",
                         "check the terminal's character encoding (locale) and type the request again")
    if not text:
        raise UsageError("the intent is empty", 'say what to trace, e.g. gpttrace "trace files opened by nginx"')
    if len(text) > MAX_INTENT:
        raise UsageError(f"the intent is {len(text)} characters long; the limit is {MAX_INTENT}",
                         "say what to trace in a sentence or two")
    return text

@dataclass
class Intent:
    text: str  # lowercased, whitespace folded
    words: list[str]
    raw: str = ""  # as typed (function names keep their case: SSL_write)
    actions: set[str] = field(default_factory=set)
    group_by: list[str] = field(default_factory=list)
    comm: str | None = None
    comms: list[str] = field(default_factory=list)  # "by cat or head": each of them (comm is the first)
    not_comms: list[str] = field(default_factory=list)  # "not by systemd", "except cat": none of them
    pid: int | None = None
    unit: str | None = None  # 'ns', 'us', 'ms', 's'
    hz: int | None = None
    duration_s: float | None = None
    duration_text: str | None = None  # "for 2 seconds": how long to run, not what to trace (left out of retrieval)
    interval_s: int | None = None
    top: int | None = None
    names: list[str] = field(default_factory=list)  # written as "X calls", "the X syscall", "function X"
    explicit_calls: list[str] = field(default_factory=list)  # written as name() or "the X syscall"
    syscall_words: list[str] = field(default_factory=list)  # written as "the X syscall" / "syscall X"
    library: str | None = None
    port: int | None = None
    signal: int | None = None  # "SIGKILL", "kill -9", "signal 15": that signal's number
    size_bound: tuple[str, int] | None = None  # "larger than 1 MB": (">", 1048576); "under 100 bytes": ("<", 100)
    threshold_text: str | None = None  # the words that said it (left out of retrieval)
    latency_bound: tuple[str, int] | None = None  # "slower than 10 ms": (">", 10000000) in ns
    latency_text: str | None = None
    path: str | None = None
    errors_only: bool = False
    kernel_stack: bool = False
    user_stack: bool = False
    output_format: str | None = None  # "in octal", "in hex": how a number column is shown
    protocol: int | None = None  # "udp sends": IPPROTO_UDP, where the probes carry a protocol field

    def has(self, *phrases: str) -> bool:
        return any(has_phrase(self.text, p) for p in phrases)


SIZE_THRESHOLD = re.compile(
    r"(?P<cmp>at least|no less than|larger|bigger|greater|more|over|above|exceeding|>=|>"
    r"|at most|no more than|smaller|less|fewer|shorter|under|below|<=|<)\s*(?:than\s+)?"
    r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>" + units.SIZE_WORD_RE + r")\b"
)
PROTOCOLS = {name: int(getattr(socket, f"IPPROTO_{name.upper()}")) for name in ("icmp", "tcp", "udp", "sctp")}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "fifty": 50, "hundred": 100}
LATENCY_THRESHOLD = re.compile(
    r"(?P<cmp>at least|no less than|longer|slower|greater|more|over|above|exceeding|>=|>"
    r"|at most|no more than|shorter|faster|less|under|below|within|<=|<)\s*(?:than\s+)?"
    r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>" + units.TIME_WORD_RE + r")\b"
)
SIZE_COMPARISONS = {"at least": ">=", "no less than": ">=", ">=": ">=", "at most": "<=", "no more than": "<=",
                    "within": "<=", "faster": "<",
                    "<=": "<=", "smaller": "<", "less": "<", "fewer": "<", "shorter": "<", "under": "<",
                    "below": "<", "<": "<"}  # any other word: ">"


def has_phrase(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` as whole words (not inside "re-open" or "opened"). A plain search, not a
    regex per phrase: compiling a hundred of those was a quarter of a one-shot trace's planning time."""
    start = 0
    while (at := text.find(phrase, start)) >= 0:
        end = at + len(phrase)
        if not (at and _in_word(text[at - 1])) and not (end < len(text) and _in_word(text[end])):
            return True
        start = at + 1
    return False


def _in_word(char: str) -> bool:
    return char.isalnum() or char in "_-"


_WORD_RE = re.compile(r"[a-z0-9_][a-z0-9_.+-]*")


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())



def parse(raw: str) -> Intent:
    text = " ".join(raw.replace("\u2019", "'").split()).strip()
    low = text.lower()
    it = Intent(text=low, words=words(low), raw=text)
    for action, phrases in ACTIONS.items():
        if any(has_phrase(low, p) for p in phrases):
            it.actions.add(action)
    if it.has("linear histogram", "lhist"):
        it.actions.add("lhist")

    # Process filters: "by nginx", "for pid 42", "process nginx", "named nginx", "comm == nginx", 'of "my app"'
    m = re.search(r"\b(?:pid|process id|pid=|pid ==)\s*[=:]?\s*(\d{1,7})\b", low)
    m = m or re.search(r"(?:^|\s)-p\s*(\d{1,7})\b", low)  # as the BCC tools take it: "syscount -p 42"
    if m:
        it.pid = int(m.group(1))
    quoted = re.search(r"[\"'`]([^\"'`]{1,64})[\"'`]", text)
    for pattern in (
        r"\b(?:process(?:es)? named|program named|command named|named|called|comm(?:and)?\s*(?:==|=|is))\s+([\w.+:-]+)",
        r"\b(?:strace|ltrace)\s+(?:-\w+\s+)*([a-z][\w.+:-]*)",  # "strace ls"
        r"\bwhat\s+([a-z][\w.+:-]*)\s+is\s+(?:doing|up to)\b",  # "what ls is doing"
        r"\bhow long (?:does |do |did )?(?:the )?([a-z][\w.+:-]*)\s+(?:takes? to run|runs?|lasts?|lives?)\b",
        r"\b(?:process|processes|program|command|comm)\s+([a-z][\w.+:-]*)",
        r"\b(?:by|from|of|for|in|inside|only|just)\s+(?:the\s+)?([a-z][\w.+:-]*)(?:\s+(?:process(?:es)?|program|daemon|server|command|binary))?\b",
        r"\b([a-z][\w.+-]*)'s\b",
        r"\b(?:does|did|do|is|are|was|were|has|have)\s+(?:the\s+)?([a-z][\w.+:-]*)\s+(?:\w+ing|open|read|write|call|"
        r"use|send|receive|connect|touch|access|exec|run|spawn|allocate|do|make|create|delete|block|wait|fork|"
        r"spend|hit|take|get|cause|trigger|generate|produce|incur|see|suffer|issue|send)\b",
        rf"\b([a-z][\w.+:-]*)\s+(?:{SUBJECT_VERBS})\b",  # "which files nginx reads"
    ):
        for cand in re.finditer(pattern, low):
            name = cand.group(1).rstrip(".:")
            if plausible_process(name, low, cand):
                it.comm = original_case(text, name)[:15]  # the kernel keeps 15 characters of a name
                break
        if it.comm:
            break
    if quoted and not it.comm and plausible_quoted(quoted.group(1)):
        it.comm = quoted.group(1)
    process_alternatives(it, low, text)

    # Units, frequencies, durations, intervals, top-N
    m = re.search(
        r"\b(?:in|as|using|into)\s+(nanoseconds?|microseconds?|milliseconds?|seconds?|ns|us|µs|ms|usecs?|msecs?|nsecs?)\b",
        low,
    )
    m = m or re.search(r"\b(nanoseconds?|microseconds?|milliseconds?|ns|us|µs|ms|usecs|msecs|nsecs)\b", low)
    if m:
        it.unit = units.time_unit(m.group(1))
    m = re.search(r"\b(\d{1,5})\s*(?:hz|hertz|samples? per second|times a second|times per second)\b", low)
    m = m or re.search(r"(?:^|\s)-f\s*(\d{1,5})\b", low)  # "profile -F 99"
    if m:
        it.hz = int(m.group(1))
    m = re.search(r"\bfor\s+(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?)\b", low)
    if m:
        it.duration_s = float(m.group(1)) * (60 if m.group(2).startswith("m") else 1)
        it.duration_text = m.group(0)
    m = re.search(r"\bevery\s+(\d+)?\s*(s|sec|secs|seconds?|minutes?)\b", low)
    if m:
        n = int(m.group(1) or 1)
        it.interval_s = n * (60 if m.group(2).startswith("min") else 1)
    if re.search(r"\b(?:per|each|every) second\b", low) and it.interval_s is None and "count" in it.actions:
        it.interval_s = 1
    m = re.search(rf"\b(?:top|the|first)\s+(\d{{1,4}}|{'|'.join(NUMBER_WORDS)})\s*(?:most|busiest|largest|biggest|"
                  r"slowest|heaviest|processes|programs|files|commands|calls|syscalls|entries|threads|tasks|$|\b)",
                  low)
    if m and (low[m.start():].startswith("top") or re.search(r"\b(?:most|busiest|largest|biggest|slowest|heaviest|"
                                                             r"top)\b", low)):
        it.top = int(m.group(1)) if m.group(1).isdigit() else NUMBER_WORDS[m.group(1)]
    m = SIZE_THRESHOLD.search(low)
    if m:
        size = float(m.group("n")) * units.SIZE_WORDS[m.group("unit")]
        if size < 1 << 40:
            it.size_bound = (SIZE_COMPARISONS.get(m.group("cmp"), ">"), int(size))
            it.threshold_text = m.group(0)
    m = LATENCY_THRESHOLD.search(low)
    if m:
        ns = units.ns(m.group("unit"))
        assert ns is not None  # (the pattern matches only the words of units.TIME_WORDS)
        it.latency_bound = (SIZE_COMPARISONS.get(m.group("cmp"), ">"), int(float(m.group("n")) * ns))
        it.latency_text = m.group(0)
        it.actions.add("latency")  # a bound on how long calls take: their time is measured
    m = re.search(r"\bport\s+(\d{1,5})\b", low)
    if m:
        it.port = int(m.group(1))
    it.signal = _signal_number(low)
    protocols = {PROTOCOLS[w] for w in re.findall(r"\b(tcp|udp|icmp|sctp)\b", low)}
    it.protocol = protocols.pop() if len(protocols) == 1 else None  # "tcp and udp": both, no filter
    m = re.search(r"(?:^|(?<=[\s\"'`(=:]))(/[\w./+-]+)", text)  # a path, not the "/O" of "I/O"
    if m and not re.match(r"/\d", m.group(1)):
        it.path = m.group(1)
    it.errors_only = it.has("failed", "failing", "failures", "fail", "fails", "errors", "error", "unsuccessful",
                            "enoent", "non-zero", "nonzero", "non zero", "errno", "errnos", "error code",
                            "error codes")

    # Grouping: "by X", "per X", "for each X"
    for m in re.finditer(
        r"\b(?:by|per|for each|grouped by|broken down by|group by|keyed by|across)\s+(?:the\s+)?([a-z ]{2,30}?)"
        r"(?=$|[,.;:!?)]|\s(?:and|with|in|as|for|on|over|during|every|while|using|at)\b)",
        low,
    ):
        phrase = m.group(1).strip()
        for key, ws in GROUP_WORDS.items():
            if any(has_phrase(phrase, w) for w in ws):
                if key not in it.group_by:
                    it.group_by.append(key)
                break
    if (
        re.search(r"\b(?:which|what|who|top|busiest|each) (?:process|processes|programs?|commands?|tasks?)\b",
                  low)
        and "comm" not in it.group_by
    ):
        it.group_by.append("comm")
    if re.search(r"\b(?:which|what|each|every) (?:cpu|cpus|core|cores|processor)\b", low) and "cpu" not in it.group_by:
        it.group_by.append("cpu")
    it.kernel_stack = it.has("kernel stack", "kernel stacks", "kstack", "kernel-space", "in the kernel")
    it.user_stack = it.has(
        "user stack",
        "user stacks",
        "user-space stack",
        "user-space stacks",
        "ustack",
        "userspace stack",
        "user space stack",
        "user-level stack",
        "user-space",
    )

    # Names that may be syscalls, tracepoints or functions
    for m in re.finditer(r"\b([a-z_][a-z0-9_]*)\s*\(\s*\)", low):
        it.explicit_calls.append(m.group(1))
    # "X calls", and lists: "open and openat calls", "kill, tkill or tgkill syscalls"
    for m in re.finditer(
        r"\b(?:the\s+)?((?:[a-z_][a-z0-9_]*\s*(?:,\s*(?:and\s+|or\s+)?|\s(?:and|or)\s+|/)\s*)*)"
        r"([a-z_][a-z0-9_]*)\s+(?:syscalls?|system calls?|calls?|tracepoint|function)\b",
        low,
    ):
        listed = [w for w in re.split(r"[\s,/]+", m.group(1)) if w and w not in ("and", "or")]
        it.names.extend([*listed, m.group(2)])
    for m in re.finditer(r"\b(?:syscall|system call|tracepoint|function|probe)\s+([a-z_][a-z0-9_:]*)\b", low):
        it.names.append(m.group(1))
    for m in re.finditer(
        r"\b(?:the\s+)?([a-z_][a-z0-9_]*)\s+(?:syscall|system call)s?\b"
        r"|\b(?:syscall|system call)\s+([a-z_][a-z0-9_]*)\b",
        low,
    ):
        name = m.group(1) or m.group(2)
        explicit = (
            m.group(2) is not None or m.group(0).startswith("the ") or "_" in name or any(c.isdigit() for c in name)
        )
        if explicit and not ordinary_word(name):
            it.syscall_words.append(name)
    m = re.search(r"\b(lib[a-z0-9_+-]*)\b", low)
    if m:
        it.library = m.group(1)
    it.output_format = _output_format(low)
    return it


def _output_format(low: str) -> str | None:
    from .lexicon import load

    for fmt, phrases in load().formats.items():
        if any(has_phrase(low, p) for p in phrases):
            return fmt
    return None


def _signal_number(text: str) -> int | None:
    """The signal a question names: "SIGKILL", "sigterms", "kill -9", "signal 15" (Linux numbers)."""
    import signal

    for m in re.finditer(r"\bsig([a-z]{2,7}[12]?)\b", text):
        name = m.group(1).upper()
        for candidate in (name, name.removesuffix("S")):  # "sigkills"
            if "SIG" + candidate in signal.Signals.__members__:
                return int(signal.Signals["SIG" + candidate])
    said = re.search(r"\b(?:kill -|signal (?:number )?)(\d{1,2})\b", text)
    if said and 0 < int(said.group(1)) < 65:
        return int(said.group(1))
    return None

