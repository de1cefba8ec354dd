"""Classic tools end to end: each asked for by name and by what it does in other words (none of these phrasings
is a paraphrase of its entry), with a workload, and judged on the events and on the program that ran."""

from __future__ import annotations

import re

import pytest
from conftest import run_cli

from gpttrace_py.corpus import load

# tool, its entry, a description in other words, the workload, what the events must show, what the program uses
CASES = [
    ("biosnoop", "biosnoop",
     "list every request sent to the disk with the process that made it and how long it took",
     "dd if=/dev/zero of=/var/tmp/gptt-classic-bio1 bs=1M count=4 oflag=direct",
     [r"^\d+\s+dd\s+\d+\s+W\S*\s+\d+\s+\d+$"], ["block_rq_issue", "block_rq_complete"]),
    ("biolatency", "biolatency", "distribution of storage device response times",
     "dd if=/dev/zero of=/var/tmp/gptt-classic-bio2 bs=1M count=4 oflag=direct",
     [r"^\[\d+\S*, \d+\S*\)\s+[1-9]\d*\s+\|@+"], ["block_rq_issue", "block_rq_complete", r"hist\("]),
    ("bitesize", "bitesize", "for each program, how large its block device requests are",
     "dd if=/dev/zero of=/var/tmp/gptt-classic-bio3 bs=1M count=4 oflag=direct",
     [r"\bdd\b", r"^\[\d+\S*, \d+\S*\)\s+[1-9]\d*\s+\|@+"], ["block_rq_issue", "args->bytes"]),
    ("biotop", "disk-io-by-process", "which programs move the most bytes to and from the disk",
     "dd if=/dev/zero of=/var/tmp/gptt-classic-bio4 bs=1M count=4 oflag=direct",
     [r"\bdd\b.*\b[1-9]\d{5,}\b"], ["block_rq_issue"]),
    ("execsnoop", "execsnoop", "print each program launched on the machine with its arguments",
     "sh -c '/bin/echo gptt-classic-exec'", [r"\becho\b.*gptt-classic-exec"], ["sched_process_exec|sys_enter_execve"]),
    ("exitsnoop", "exitsnoop", "when a process terminates show its status code",
     "sh -c 'exit 3'", [r"\bsh\b.*\b3\b"], ["sched_process_exit|sys_enter_exit_group"]),
    ("killsnoop", "sigsnoop", "who sends a signal to whom with the kill system call",
     "sh -c 'sleep 5 & kill $!'", [r"\bsh\b.*\b(15|SIGTERM)\b"], ["sys_enter_kill"]),
    ("gethostlatency", "dns-lookups", "time spent resolving host names in each program",
     "python3 -c \"import socket; socket.getaddrinfo('localhost', 80)\"", [r"\blocalhost\b|\bpython3\b"],
     ["uprobe:.*getaddrinfo"]),
    ("capable", "capabilities", "kernel privilege checks that programs trigger, granted or refused",
     "sh -c 'touch /var/tmp/gptt-classic-cap; chown 1 /var/tmp/gptt-classic-cap; rm -f /var/tmp/gptt-classic-cap'",
     [r"\bchown\b.*CAP_CHOWN"], ["cap_capable"]),
    ("setuids", "setuids", "processes dropping or gaining root by switching their uid",
     "setpriv --reuid=65534 --regid=65534 --clear-groups true", [r"\b65534\b"],
     ["sys_exit_setresuid"]),
    ("naptime", "naptime", "programs that pause themselves with sleep and for how long",
     "sleep 0.3", [r"\bsleep\s+(29\d|3\d\d)$"], ["sys_enter_clock_nanosleep|sys_enter_nanosleep"]),
    ("cpudist", "cpudist", "how long a thread stays on the processor each time it is scheduled",
     "dd if=/dev/zero of=/dev/null bs=1M count=300", [r"^\[\d+\S*, \d+\S*\)\s+[1-9]\d*\s+\|@+"],
     ["sched_switch", "args->prev_pid"]),
    ("bindsnoop", "bindsnoop", "which programs attach a socket to a local port",
     "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 0))\"", [r"\bpython3\b"],
     ["sys_enter_bind"]),
    ("filegone", "unlinksnoop", "report files that get removed and by which process",
     "sh -c 'touch /var/tmp/gptt-classic-gone; rm /var/tmp/gptt-classic-gone'",
     [r"\brm\b"], ["sys_enter_unlinkat"]),
    ("cobjnew", "malloc-sizes", "size distribution of the memory C programs ask malloc for",
     "python3 -c \"[bytearray(64) for _ in range(10000)]\"", [r"^\[\d+\S*, \d+\S*\)\s+[1-9]\d*\s+\|@+"],
     ["uprobe:.*malloc"]),
]


def test_descriptions_are_not_paraphrases_of_their_entries() -> None:
    by_id = {e.id: e for e in load()}
    assert len(CASES) >= 15 and len({c[0] for c in CASES}) == len(CASES)
    for tool, entry, description, *_ in CASES:
        e = by_id[entry]
        assert tool in e.tool_names, f"{entry} does not cover {tool}"
        assert description.lower() not in {p.lower() for p in e.paraphrases}
        assert tool not in description


@pytest.mark.kernel
@pytest.mark.parametrize("asked", ["by name", "in other words"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_classic_tool(case: tuple, asked: str) -> None:
    tool, _entry, description, command, events, program = case
    request = f"run {tool}" if asked == "by name" else description
    r = run_cli("--yes", "--offline", "-c", command, request, timeout=90)
    assert r.returncode in (0, 130), r.stderr[-2000:]
    for rx in program:
        assert re.search(rx, r.stderr), f"the program lacks /{rx}/:\n{r.stderr[-2500:]}"
    for rx in events:
        assert re.search(rx, r.stdout, re.M), f"the events lack /{rx}/:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
