"""Read a plain-language tracing question into slots: what to do, on what, filtered how, shown how.

Only words are read here; whether a named syscall or tracepoint exists is the catalog's business.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from functools import lru_cache

from .vocabulary import STOP_WORDS

MAX_INTENT = 2000

ACTIONS = {
    "hist": (
        "histogram",
        "by size",
        "by sizes",
        "histograms",
        "distribution",
        "distributions",
        "hist",
        "buckets",
        "spread",
        "power-of-2",
        "log2",
    ),
    "lhist": ("linear histogram", "lhist"),
    "count": (
        "count",
        "counts",
        "counting",
        "how many",
        "how often",
        "number of",
        "frequency of",
        "tally",
        "rate of",
        "per second",
        "top",
        "most",
        "busiest",
        "which processes",
        "which process",
        "who calls",
        "who is calling",
        "per process",
        "by process",
        "per-process",
    ),
    "sum": ("bytes", "total", "sum", "amount", "volume", "throughput", "how much data"),
    "avg": ("average", "mean", "avg"),
    "max": ("maximum", "max", "largest", "biggest", "longest", "worst"),
    "min": ("minimum", "min", "smallest", "shortest"),
    "latency": (
        "latency",
        "latencies",
        "how long",
        "duration",
        "durations",
        "response time",
        "response times",
        "delay",
        "delays",
        "time spent",
        "how much time",
        "slow",
        "slowest",
        "took",
        "takes",
        "wait time",
        "waiting",
    ),
    "profile": (
        "profile",
        "profiling",
        "sample",
        "sampling",
        "on-cpu",
        "on cpu",
        "flame",
        "hot",
        "hottest",
        "cpu usage",
    ),
    "trace": (
        "trace",
        "show",
        "print",
        "log",
        "watch",
        "snoop",
        "list",
        "monitor",
        "display",
        "report",
        "see",
        "every",
        "each",
        "who",
    ),
}

GROUP_WORDS = {
    "comm": (
        "process name",
        "process",
        "processes",
        "command",
        "comm",
        "program",
        "application",
        "app",
        "task",
        "executable",
        "binary",
        "process names",
        "command name",
    ),
    "pid": ("pid", "process id", "pids"),
    "tid": ("thread", "tid", "threads", "thread id"),
    "cpu": ("cpu", "cpus", "core", "processor"),
    "uid": ("user", "uid", "users"),
    "syscall": ("syscall", "system call", "syscalls", "system calls"),
    "file": ("file", "filename", "path", "files"),
    "stack": ("stack", "stacks", "call stack", "stack trace", "backtrace"),
    "port": ("port", "ports"),
    "device": ("disk", "device", "dev"),
}

UNITS = {
    "ns": 1,
    "nsec": 1,
    "nanosecond": 1,
    "nanoseconds": 1,
    "us": 1000,
    "usec": 1000,
    "µs": 1000,
    "microsecond": 1000,
    "microseconds": 1000,
    "ms": 1000000,
    "msec": 1000000,
    "millisecond": 1000000,
    "milliseconds": 1000000,
    "s": 1000000000,
    "sec": 1000000000,
    "second": 1000000000,
    "seconds": 1000000000,
}

# Words after "by"/"from"/"of" that are never a process name.
NOT_PROCESS = {
    # helping verbs: "processes have", "programs were"
    "have", "has", "had", "are", "were", "was", "is", "be", "been", "being", "will", "would", "can", "could",
    "should", "might", "must", "did", "does", "do", "keep", "keeps", "kept", "got", "gets",
    # layers of the kernel: "vfs writes", "ext4 reads"
    "vfs", "ext4", "xfs", "btrfs", "nfs", "fs", "filesystem", "block", "disk", "page", "socket", "tcp", "udp",
    "process",
    "processes",
    "name",
    "pid",
    "thread",
    "threads",
    "cpu",
    "user",
    "users",
    "syscall",
    "syscalls",
    "system",
    "file",
    "files",
    "path",
    "paths",
    "size",
    "sizes",
    "type",
    "vector",
    "device",
    "port",
    "ports",
    "state",
    "states",
    "stack",
    "stacks",
    "kernel",
    "the",
    "a",
    "an",
    "all",
    "any",
    "each",
    "every",
    "command",
    "program",
    "programs",
    "application",
    "function",
    "functions",
    "latency",
    "count",
    "irq",
    "irqs",
    "signal",
    "signals",
    "number",
    "reason",
    "return",
    "value",
    "errno",
    "error",
    "errors",
    "bytes",
    "mode",
    "uid",
    "comm",
    "tid",
    "requests",
    "request",
    "duration",
    "time",
    "second",
    "seconds",
    "ms",
    "us",
    "one",
    "sockets",
    "address",
    "host",
    "destination",
    "source",
    "category",
    "event",
    "events",
    "interface",
    "flags",
    "library",
    "libc",
    "it",
    "them",
    "this",
    "that",
    "me",
    "per",
    "cgroup",
    "container",
    "directory",
    "fd",
    "level",
    "operation",
    "op",
    "sector",
    "cause",
    "caller",
    "callers",
    "code",
    "codes",
    "status",
    "length",
    "dport",
    "sport",
    "family",
    "protocol",
    "vec",
    "prio",
    "priority",
    "node",
    "zone",
    "order",
    "inode",
    "ret",
    "result",
    "results",
    "kind",
    "class",
    "queue",
    "hz",
    "hertz",
    "frequency",
    "rate",
    "bucket",
    "buckets",
    "ip",
    "addr",
    "remote",
    "local",
    "peer",
    "major",
    "minor",
    "rwbs",
    "direction",
    "key",
    "keys",
    "column",
}


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
        return any(_has_phrase(self.text, p) for p in phrases)


BYTE_UNITS = {"b": 1, "byte": 1, "bytes": 1, "k": 1024, "kb": 1024, "kib": 1024, "kilobytes": 1024,
              "mb": 1 << 20, "mib": 1 << 20, "megabytes": 1 << 20, "gb": 1 << 30, "gib": 1 << 30, "gigabytes": 1 << 30}
SIZE_THRESHOLD = re.compile(
    r"(?P<cmp>at least|no less than|larger|bigger|greater|more|over|above|exceeding|>=|>"
    r"|at most|no more than|smaller|less|fewer|shorter|under|below|<=|<)\s*(?:than\s+)?"
    r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>" + "|".join(sorted(BYTE_UNITS, key=len, reverse=True)) + r")\b"
)
PROTOCOLS = {name: int(getattr(socket, f"IPPROTO_{name.upper()}")) for name in ("icmp", "tcp", "udp", "sctp")}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "fifty": 50, "hundred": 100}
LATENCY_THRESHOLD = re.compile(
    r"(?P<cmp>at least|no less than|longer|slower|greater|more|over|above|exceeding|>=|>"
    r"|at most|no more than|shorter|faster|less|under|below|within|<=|<)\s*(?:than\s+)?"
    r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>nanoseconds?|microseconds?|milliseconds?|seconds?|nsecs?|usecs?|msecs?|secs?|ns|us|µs|ms|s)\b"
)
SIZE_COMPARISONS = {"at least": ">=", "no less than": ">=", ">=": ">=", "at most": "<=", "no more than": "<=",
                    "within": "<=", "faster": "<",
                    "<=": "<=", "smaller": "<", "less": "<", "fewer": "<", "shorter": "<", "under": "<",
                    "below": "<", "<": "<"}  # any other word: ">"


def _has_phrase(text: str, phrase: str) -> bool:
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
_STOP = STOP_WORDS


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())



def parse(raw: str) -> Intent:
    text = " ".join(raw.replace("\u2019", "'").split()).strip()
    low = text.lower()
    it = Intent(text=low, words=words(low), raw=text)
    for action, phrases in ACTIONS.items():
        if any(_has_phrase(low, p) for p in phrases):
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
        rf"\b([a-z][\w.+:-]*)\s+(?:{_SUBJECT_VERBS})\b",  # "which files nginx reads"
    ):
        for cand in re.finditer(pattern, low):
            name = cand.group(1).rstrip(".:")
            if _plausible_process(name, low, cand):
                it.comm = _original_case(text, name)[:15]  # the kernel keeps 15 characters of a name
                break
        if it.comm:
            break
    if quoted and not it.comm and _plausible_quoted(quoted.group(1)):
        it.comm = quoted.group(1)
    _process_alternatives(it, low, text)

    # Units, frequencies, durations, intervals, top-N
    m = re.search(
        r"\b(?:in|as|using|into)\s+(nanoseconds?|microseconds?|milliseconds?|seconds?|ns|us|µs|ms|usecs?|msecs?|nsecs?)\b",
        low,
    )
    m = m or re.search(r"\b(nanoseconds?|microseconds?|milliseconds?|ns|us|µs|ms|usecs|msecs|nsecs)\b", low)
    if m:
        it.unit = {1: "ns", 1000: "us", 1000000: "ms", 1000000000: "s"}[
            UNITS.get(m.group(1).rstrip("s") if m.group(1).rstrip("s") in UNITS else m.group(1), 1000)
        ]
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
        size = float(m.group("n")) * BYTE_UNITS[m.group("unit")]
        if size < 1 << 40:
            it.size_bound = (SIZE_COMPARISONS.get(m.group("cmp"), ">"), int(size))
            it.threshold_text = m.group(0)
    m = LATENCY_THRESHOLD.search(low)
    if m:
        unit = m.group("unit") if m.group("unit") in UNITS else m.group("unit").removesuffix("s")
        it.latency_bound = (SIZE_COMPARISONS.get(m.group("cmp"), ">"), int(float(m.group("n")) * UNITS[unit]))
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
            if any(_has_phrase(phrase, w) for w in ws):
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
        if explicit and not _ordinary_word(name):
            it.syscall_words.append(name)
    m = re.search(r"\b(lib[a-z0-9_+-]*)\b", low)
    if m:
        it.library = m.group(1)
    it.output_format = _output_format(low)
    return it


_NAME = r"[a-z][\w.+:-]*"
_NEGATION = re.compile(
    r"\b(?:(?:but |and )?not (?:by|from|made by|for|of|in|including)|except(?: for| by| from)?|excluding|"
    r"other than|apart from|aside from|ignoring|ignore|skipping|skip|but not|without|"
    r"(?:anything|everything|anyone|all|any process(?:es)?|every process|all processes) but)\s+"
    rf"(?:the\s+)?(?:process(?:es)?\s+|programs?\s+|commands?\s+)?(?:named\s+|called\s+)?({_NAME}"
    rf"(?:\s*(?:,\s*(?:or\s+|and\s+|nor\s+)?|\s+or\s+|\s+and\s+|\s+nor\s+|\s*/\s*){_NAME})*)"
)
_ALTERNATIVE_BEFORE = re.compile(rf"(?<![\w.+:-])({_NAME})(?:\s*,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*/\s*)$")
_ALTERNATIVE = re.compile(rf"\s*(?:,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*/\s*)(?:by\s+)?({_NAME})")


def _process_alternatives(it: Intent, low: str, text: str) -> None:
    """Alternatives and exclusions of process names: "by cat or head" keeps both; "not by systemd", "except
    cat", "other than sshd or cron" leave those out (and are no process to keep)."""
    for m in _NEGATION.finditer(low):
        names = [n.rstrip(".:") for n in re.split(r"\s*(?:,|\bor\b|\band\b|\bnor\b|/)\s*", m.group(1)) if n]
        names = [n for n in names if _named_process(n)]
        for n in names:
            name = _original_case(text, n)[:15]
            if name not in it.not_comms:
                it.not_comms.append(name)
    if it.comm and it.comm.lower() in {n.lower() for n in it.not_comms}:
        it.comm = None  # "files opened but not by systemd": systemd is what to leave out
    if not it.comm:
        return
    at = re.search(rf"(?<![\w-]){re.escape(it.comm.lower())}(?![\w-])", low)
    if at is None:
        return
    it.comms = [it.comm]
    start = at.start()  # names before it: "cat or head opened" (the order Chinese requests come in)
    while (m := _ALTERNATIVE_BEFORE.search(low, 0, start)) is not None and _named_process(m.group(1).rstrip(".:")):
        name = _original_case(text, m.group(1).rstrip(".:"))[:15]
        if name not in it.comms:
            it.comms.insert(0, name)
        start = m.start()
    end = at.end()
    while (m := _ALTERNATIVE.match(low, end)) is not None and _named_process(m.group(1).rstrip(".:")):
        name = _original_case(text, m.group(1).rstrip(".:"))[:15]
        if name not in it.comms:
            it.comms.append(name)
        end = m.end()
    if len(it.comms) == 1:
        it.comms = []


def _named_process(name: str) -> bool:
    """Can this word in a list of programs ("cat or head", "except systemd") be a program's name?"""
    from .vocabulary import KNOWN_PROCESSES

    if name in KNOWN_PROCESSES:
        return True
    return bool(name) and not name.isdigit() and not _ordinary_word(name) and not _tracing_vocabulary(name) \
        and not name.endswith(_ENGLISH_SUFFIXES)


def _output_format(low: str) -> str | None:
    from .lexicon import load

    for fmt, phrases in load().formats.items():
        if any(_has_phrase(low, p) for p in phrases):
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
    m = re.search(r"\b(?:kill -|signal (?:number )?)(\d{1,2})\b", text)
    if m and 0 < int(m.group(1)) < 65:
        return int(m.group(1))
    return None


def _ordinary_word(word: str) -> bool:
    """An English or tracing word (count, slow, failed, ...), as opposed to an identifier like fchownat."""
    from .vocabulary import COMMON_WORDS

    action_words = {w for phrases in ACTIONS.values() for p in phrases for w in p.split()}
    group_words = {w for phrases in GROUP_WORDS.values() for p in phrases for w in p.split()}
    return (
        word in COMMON_WORDS
        or word in NOT_PROCESS
        or word in action_words
        or word in group_words
        or word in _STOP
        or word
        in {
            "slow",
            "failed",
            "failing",
            "frequent",
            "common",
            "rare",
            "unusual",
            "blocking",
            "expensive",
            "long",
            "short",
            "many",
            "few",
            "total",
            "unique",
        }
    )


@lru_cache(maxsize=1)
def _negation_words() -> frozenset[str]:
    """The words of the lexicon's exclusions ("except", "other than"...) and of lists: never a program's name."""
    from .lexicon import load

    return frozenset(w for phrase in load().negation for w in phrase.split()) | {"or", "and", "nor", "than"}


@lru_cache(maxsize=1)
def _action_words() -> frozenset[str]:
    return frozenset(w for phrases in ACTIONS.values() for p in phrases for w in p.split())


def _original_case(text: str, lowered: str) -> str:
    m = re.search(re.escape(lowered), text, re.IGNORECASE)
    return m.group(0) if m else lowered


def _plausible_quoted(name: str) -> bool:
    return 0 < len(name) <= 15 and "/" not in name and not name.strip().count(" ") > 1


_ACTOR_NOUNS = ("process", "program", "daemon", "server", "command", "binary", "service")


_ENGLISH_SUFFIXES = ("tion", "sion", "ing", "ment", "ness", "ity", "ance", "ence", "ies", "ings", "ions")


def _tracing_vocabulary(word: str) -> bool:
    """A word the examples corpus uses (page, execution, latency...): a topic, not a program name."""
    try:
        from .retrieval import index, stem
    except ImportError:
        return False
    return stem(word) in index().idf


def _plausible_process(name: str, text: str, match: re.Match[str]) -> bool:
    from .vocabulary import KNOWN_PROCESSES, NOT_A_PROCESS

    if not name or name in NOT_PROCESS or name in NOT_A_PROCESS or name in _STOP or name.isdigit() or len(name) > 64:
        return False
    phrase = match.group(0)
    if phrase.endswith(" calls") and (_calls_of_a_function(name, text) or name not in KNOWN_PROCESSES):
        return False  # "frobnicate calls": calls of a function far more often than a program that calls
    if re.fullmatch(r"(?:processes|programs)\s+\S+", phrase) and name in _WHAT_PROCESSES_DO:  # "processes sleep"
        return False
    if name in KNOWN_PROCESSES:
        return True
    if name in _action_words() or name in _negation_words():  # "by process tally", "process except java"
        return False
    if _tracing_vocabulary(name) or name.endswith(_ENGLISH_SUFFIXES):
        return False
    if text[match.end(1) :].lstrip().startswith(_ACTOR_NOUNS):
        return True
    if re.match(r"\s+(?:id|ids|name|names|number|numbers|type|types|code|codes|address|addresses|reason|reasons|"
                r"size|sizes|state|states|kind|kinds|class|level|index|value|values|count|counts)\b",
                text[match.end(1):]):
        return False  # "by table id", "by exit reason": a field to count by, not a program
    if (phrase.startswith(("by ", "named", "called", "comm", "process", "program", "command", "strace", "ltrace",
                           "what ", "how long ")) or phrase.endswith("'s")):
        return True
    if phrase.startswith(("does ", "did ", "do ", "is ", "are ", "was ", "were ", "has ", "have ")):
        return not _ordinary_word(name)
    if re.search(rf"\s(?:{_SUBJECT_VERBS})$", phrase):  # a program doing something: "files nginx reads"
        return not _ordinary_word(name)
    return False


_WHAT_PROCESSES_DO = {"sleep", "wait", "run", "block", "exit", "die", "start", "stop", "hang", "spin", "fork", "spend",
                      "crash", "get", "use", "make"}


def _calls_of_a_function(name: str, text: str) -> bool:
    """"chdir calls", "vfs_read calls", "sleep calls (nanosleep)": the noun, calls of a function, not what a
    program named so calls."""
    from ..kernel.syscalls import is_syscall

    return (is_syscall(name) or "_" in name
            or any(is_syscall(w) for w in re.findall(rf"\b\w+{re.escape(name)}\b", text)))


_SUBJECT_VERBS = ("reads|opens|writes|calls|sends|receives|connects|touches|accesses|executes|runs|spawns|"
                  "allocates|creates|deletes|removes|forks|uses|makes|opened|wrote|sent|received|created|deleted|"
                  "removed|spawned|touched|accessed|executed|allocated")
