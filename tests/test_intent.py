"""Reading intents into slots."""

from __future__ import annotations

import pytest

from gpttrace_py.planning.intent import parse


@pytest.mark.parametrize(
    "text,comm",
    [
        ("trace files opened by head", "head"),
        ("which files does nginx open", "nginx"),
        ("trace files opened by redis-server", "redis-server"),
        ("show reads for the postgres process", "postgres"),
        ('opens by process "my app"', "my app"),
        ("syscalls made by process bpftrace", "bpftrace"),
        ("count syscalls by process name", None),
        ("trace signals sent by kill", None),
        ("hello world: print a line every time a program starts", None),
        ("which processes call connect()?", None),
        ("page faults by process", None),
        ("context switches by process name", None),
        ("run queue latency histogram", None),
        ("show me which files nginx reads", "nginx"),
        ("count syscalls that sshd makes", "sshd"),
        ("what the kernel reads", None),
        ("which files it opens", None),
        ("what each process reads", None),
        ("trace chdir calls", None),  # calls of chdir(), not what a program called chdir calls
        ("trace link and symlink calls", None),
        ("trace vfs_read calls", None),
        ("show what nginx calls", "nginx"),
    ],
)
def test_process_filter(text, comm):
    assert parse(text).comm == comm


@pytest.mark.parametrize(
    "text,expected",
    [
        ("read latency in milliseconds", "ms"),
        ("read latency in us", "us"),
        ("runqueue latency as nanoseconds", "ns"),
        ("block io latency", None),
    ],
)
def test_units(text, expected):
    assert parse(text).unit == expected


def test_rates_durations_intervals_top():
    it = parse("profile kernel stacks at 99 Hz for 5 seconds, print every 2 seconds, top 10")
    assert (it.hz, it.duration_s, it.interval_s, it.top) == (99, 5.0, 2, 10)
    assert it.kernel_stack and "profile" in it.actions


def test_pid_and_grouping():
    it = parse("count read calls by pid for pid 4242")
    assert it.pid == 4242
    assert "pid" in it.group_by
    assert "count" in it.actions


@pytest.mark.parametrize(
    "text,names",
    [
        ("trace the fchownat syscall", ["fchownat"]),
        ("count syscalls by process", []),
        ("show slow system calls", []),
        ("syscall mkdirat per process", ["mkdirat"]),
    ],
)
def test_syscall_words(text, names):
    assert parse(text).syscall_words == names


def test_explicit_calls():
    assert parse("distribution of write() sizes").explicit_calls == ["write"]


@pytest.mark.parametrize(
    "text,names",
    [
        ("trace open and openat calls", ["open", "openat"]),
        ("show kill, tkill or tgkill syscalls", ["kill", "tkill", "tgkill"]),
        ("count read/write calls", ["read", "write"]),
        ("trace chmod calls", ["chmod"]),
    ],
)
def test_listed_call_names(text, names):
    assert parse(text).names == names


def test_size_thresholds():
    assert parse("writes larger than 1 MB").size_bound == (">", 1 << 20)
    assert parse("reads of at least 4 KB").size_bound == (">=", 4096)
    assert parse("short reads that return less than 100 bytes").size_bound == ("<", 100)
    assert parse("writes under 4 KB").size_bound == ("<", 4096)
    assert parse("print reads every 5 seconds").size_bound is None
    assert parse("more than 5 times").size_bound is None


def test_a_named_signal_is_its_number():
    assert parse("count SIGKILLs").signal == 9
    assert parse("who sends sigterm to nginx").signal == 15
    assert parse("trace kill -9").signal == 9
    assert parse("count signal 17 by process").signal == 17
    assert parse("trace signals").signal is None and parse("trace sigsnoop").signal is None


def test_strace_and_what_a_program_is_doing_name_the_program():
    assert parse("strace ls").comm == "ls"
    assert parse("strace -f nginx").comm == "nginx"
    assert parse("show me what ls is doing").comm == "ls"
    assert parse("what is the system doing").comm is None


def test_bcc_tool_options_for_pid_and_frequency():
    assert parse("syscount -p 42").pid == 42
    assert parse("profile -F 99").hz == 99
    assert parse("trace -p in the name").pid is None
