"""Phrases → what was understood, without a kernel: one row a request, the slots it must (and must not) fill.

Each row was written from reading the request as a user means it. ``None`` for comm means: no process filter
at all (a negative: the word must not become a process name). Rows marked with an action are requests to change
the system: they must be recognised as such, never traced."""

from __future__ import annotations

import pytest

from gpttrace_py.planning.intent import parse
from gpttrace_py.planning.shapes import intent_shape
from gpttrace_py.planning.understand import system_action

# (request, expected slots). Keys: comm, comms, not, pid, unit, duration, interval, top, path, port, signal,
# size, errors, format, shape, action.
ROWS: list[tuple[str, dict]] = [
    # processes named explicitly
    ("trace files opened by nginx", {"comm": "nginx", "shape": "events"}),
    ("which files does redis-server open", {"comm": "redis-server"}),
    ("show files opened by the postgres process", {"comm": "postgres"}),
    ("count syscalls made by ls", {"comm": "ls", "shape": "count"}),
    ("what is sshd doing", {"comm": "sshd"}),
    ("strace ls", {"comm": "ls"}),
    ("trace reads by process named myapp", {"comm": "myapp"}),
    ('trace opens by "my app"', {"comm": "my app"}),
    ("nginx's file opens", {"comm": "nginx"}),
    ("files touched by cron", {"comm": "cron"}),
    ("trace execs from bash", {"comm": "bash"}),
    ("trace tcp connects made by curl", {"comm": "curl"}),
    ("histogram of write sizes for dd", {"comm": "dd", "shape": "hist"}),
    ("count page faults of java", {"comm": "java", "shape": "count"}),
    ("trace connects for pid 1234", {"pid": 1234, "comm": None}),
    ("count syscalls of process 42", {"pid": None}),
    ("syscount -p 77", {"pid": 77}),
    ("trace opens by pid=99", {"pid": 99}),
    # alternatives and exclusions
    ("trace files opened by cat or head", {"comms": ["cat", "head"]}),
    ("trace opens by nginx, redis or sshd", {"comms": ["nginx", "redis", "sshd"]}),
    ("count writes by dd and tar", {"comms": ["dd", "tar"]}),
    ("trace file opens but not by systemd", {"comm": None, "not": ["systemd"]}),
    ("trace files opened by anything except cat", {"comm": None, "not": ["cat"]}),
    ("count writes by process, excluding sshd and cron", {"not": ["sshd", "cron"]}),
    ("trace execs other than bash", {"not": ["bash"]}),
    ("trace files opened by anything but bash", {"not": ["bash"]}),
    ("show opens apart from systemd-journal", {"not": ["systemd-journal"]}),
    ("trace connects, ignoring curl", {"not": ["curl"]}),
    ("count syscalls except for node or python3", {"not": ["node", "python3"]}),
    ("trace execs excluding the process named cron", {"not": ["cron"]}),
    # units, durations, intervals, top-N
    ("read latency histogram in microseconds", {"unit": "us", "shape": "latency"}),
    ("disk latency in ms", {"unit": "ms"}),
    ("run queue latency histogram in nanoseconds", {"unit": "ns"}),
    ("fsync latency in milliseconds", {"unit": "ms"}),
    ("count syscalls by process for 2 seconds", {"duration": 2.0, "shape": "count"}),
    ("trace opens for 10 s", {"duration": 10.0}),
    ("count context switches for 1 minute", {"duration": 60.0}),
    ("count syscalls every 5 seconds", {"interval": 5}),
    ("syscalls per second", {"interval": 1}),
    ("count syscalls by process", {"interval": None, "duration": None}),
    ("count syscalls per second", {"interval": 1}),
    ("count opens every second", {"interval": 1}),
    ("top 5 processes by syscalls", {"top": 5}),
    ("top 10 files opened", {"top": 10}),
    ("profile kernel stacks at 49 hz", {"shape": "profile"}),
    ("sample user stacks 99 times per second", {"shape": "profile"}),
    # paths, ports, signals, sizes, failures, formats
    ("who opens /etc/passwd", {"path": "/etc/passwd"}),
    ("trace files created in /tmp", {"path": "/tmp"}),
    ("show writes under /var/log/", {"path": "/var/log/"}),
    ("trace connections to port 443", {"port": 443}),
    ("count tcp retransmits on port 22", {"port": 22}),
    ("who sends SIGKILL", {"signal": 9}),
    ("trace sigterms", {"signal": 15}),
    ("who runs kill -9", {"signal": 9}),
    ("trace signal 10 deliveries", {"signal": 10}),
    ("reads larger than 1 MB", {"size": (">", 1 << 20)}),
    ("writes under 100 bytes", {"size": ("<", 100)}),
    ("writes of at least 4 KB", {"size": (">=", 4096)}),
    ("show failed opens", {"errors": True}),
    ("count connect errors by errno", {"errors": True}),
    ("trace unsuccessful execs", {"errors": True}),
    ("trace opens", {"errors": False}),
    ("show chmod calls with the new mode in octal", {"format": "oct"}),
    ("trace open flags in hex", {"format": "hex"}),
    ("trace mmap calls with the protection bits as hex", {"format": "hex"}),
    # shapes
    ("histogram of read sizes", {"shape": "hist"}),
    ("distribution of block I/O sizes", {"shape": "hist"}),
    ("how long do fsyncs take", {"shape": "latency"}),
    ("average write latency per process", {"shape": "latency"}),
    ("total bytes written per process", {"shape": "sum"}),
    ("how many execs per second", {"shape": "count"}),
    ("which process opens the most files", {"shape": "count"}),
    ("trace every exec", {"shape": "events"}),
    ("show new tcp connections", {"shape": "events"}),
    ("maximum read size by process", {"shape": "stat"}),
    ("count sched:sched_wakeup by cpu", {"shape": "count"}),
    # actions: change the system, never a trace
    ("kill processes that execute binaries from /tmp", {"action": "kill"}),
    ("block all outgoing connections to port 23", {"action": "block"}),
    ("drop packets from 10.0.0.1", {"action": "drop"}),
    ("terminate any process that opens /etc/shadow", {"action": "terminate"}),
    ("trace execs and kill them", {"action": "kill"}),
    ("please kill the fork bomb", {"action": "kill"}),
    ("deny access to /etc/shadow", {"action": "deny"}),
    ("throttle connections from curl", {"action": "throttle"}),
    ("prevent processes from writing to /etc", {"action": "prevent"}),
    ("rate-limit incoming packets on eth0", {"action": "rate-limit"}),
    ("can you block ssh logins", {"action": "block"}),
    ("stop processes that fork too much", {"action": "stop"}),
    ("i want to kill anything that opens /dev/mem", {"action": "kill"}),
    ("override the return value of openat", {"action": "override"}),
    ("inject errors into write calls", {"action": "inject"}),
    ("restart nginx when it crashes", {"action": "restart"}),
    # not actions: the verb is a noun or the question is about it
    ("block I/O latency histogram", {"action": None, "shape": "latency"}),
    ("count dropped packets by drop reason", {"action": None}),
    ("who kills processes", {"action": None}),
    ("trace kill signals", {"action": None}),
    ("block requests by disk", {"action": None}),
    ("limit the output to top 10", {"action": None}),
    ("change the trace to count by pid", {"action": None}),
    ("run queue latency", {"action": None}),
    ("trace blocked tasks", {"action": None}),
    ("show denied selinux accesses", {"action": None}),
    ("count filtered packets", {"action": None}),
    ("stop signals delivered to java", {"action": None}),
    ("trace throttled cgroups", {"action": None}),
    ("count kill syscalls by signal", {"action": None}),
    ("show tcp resets and drops", {"action": None}),
    # negatives: ordinary words that must not become a process name
    ("count reads by size", {"comm": None}),
    ("trace opens by path", {"comm": None}),
    ("count signals by signal number", {"comm": None}),
    ("count block I/O by disk", {"comm": None}),
    ("histogram of latency by cpu", {"comm": None}),
    ("count irqs by vector", {"comm": None}),
    ("trace the chdir calls", {"comm": None}),
    ("count vfs_read calls", {"comm": None}),
    ("count syscalls by type", {"comm": None}),
    ("trace tcp state changes by state", {"comm": None}),
    ("count page faults by user", {"comm": None}),
    ("trace writes by file descriptor", {"comm": None}),
    ("count connects by destination port", {"comm": None}),
    ("trace execs by uid", {"comm": None}),
    ("trace opens by the kernel", {"comm": None}),
    ("count events by reason", {"comm": None}),
    ("show syscalls by their return value", {"comm": None}),
    ("trace nanosleep calls", {"comm": None}),
    ("count futex calls by process", {"comm": None}),
    ("trace every mount", {"comm": None}),
    ("processes that sleep the longest", {"comm": None}),
    ("count syscalls for each process", {"comm": None}),
    ("count opens for every file", {"comm": None}),
    ("histogram of reads in microseconds", {"comm": None}),
    ("trace tcp connects by remote address", {"comm": None}),
    ("count disk requests by operation", {"comm": None}),
    ("count allocations by order", {"comm": None}),
    ("count wakeups by priority", {"comm": None}),
    ("trace opens by all processes", {"comm": None}),
    ("count faults by address", {"comm": None}),
    ("show execs from the shell", {"comm": None}),
    ("trace files opened by anything except cat", {"comm": None}),
    ("count syscalls by process name", {"comm": None}),
    ("trace program starts with their path", {"comm": None}),
    ("count opens by file name", {"comm": None}),
    ("which files are opened the most", {"comm": None}),
    ("trace writes of more than 1 MB", {"comm": None}),
    # process lists must stop at ordinary words
    ("trace files opened by cat and count them", {"comm": "cat", "comms": []}),
    ("trace execs by bash or by zsh", {"comms": ["bash", "zsh"]}),
    ("count writes by nginx and the time they take", {"comm": "nginx", "comms": []}),
    ("trace opens by vim, with the flags", {"comm": "vim", "comms": []}),
    ("trace reads by dd or cp in ms", {"comms": ["dd", "cp"]}),
    ("trace connects by curl or wget for 5 seconds", {"comms": ["curl", "wget"], "duration": 5.0}),
    ("trace opens by systemd except journald", {"comm": "systemd", "not": ["journald"]}),
]

FIELDS = {"comm": "comm", "comms": "comms", "not": "not_comms", "pid": "pid", "unit": "unit", "duration": "duration_s",
          "interval": "interval_s", "top": "top", "path": "path", "port": "port", "signal": "signal",
          "size": "size_bound", "errors": "errors_only", "format": "output_format"}


def test_the_table_is_large_and_has_negatives():
    assert len(ROWS) >= 150
    negatives = [r for r in ROWS if r[1].get("comm", "unset") is None or r[1].get("action", "unset") is None]
    assert len(negatives) >= 30


def check_slots(said: str, text: str, expected: dict) -> None:
    """``text`` (the request as the extractors read it; ``said`` as typed, for messages) fills ``expected``."""
    it = parse(text)
    for key, want in expected.items():
        if key == "shape":
            got = intent_shape(it)
        elif key == "action":
            act = system_action(text)
            got = act[0] if act else None
        else:
            got = getattr(it, FIELDS[key])
        assert got == want, f"{said!r} read as {text!r}: {key} = {got!r}, wanted {want!r}"


@pytest.mark.parametrize("request_text,expected", ROWS, ids=[r[0][:50] for r in ROWS])
def test_phrase(request_text: str, expected: dict) -> None:
    check_slots(request_text, request_text, expected)
