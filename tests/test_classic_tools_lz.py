"""BCC's tools l-z in the corpus: the table in examples_corpus/TOOLS-l-z.md is generated from classic-tools.json
and the entries (classic_tools.bcc_l_z) and agrees with them, and entries run by name with a workload print the
workload's events.

Each run is ``gpttrace examples run ID`` with a workload that makes the traced event happen, and the
assertions name something only that workload produces (its port, its function name, its byte count).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli

TABLE = ROOT / "examples_corpus" / "TOOLS-l-z.md"
_ROW = re.compile(r"^\| ([a-z_-]+(?:, [a-z_-]+)*) \| (.+?) \| (.+?) \|$")
_REASON = re.compile(r"^\| ([a-z_-]+(?:, [a-z_-]+)*) \| (.+?) \|$")


def _rows() -> tuple[dict[str, tuple[list[str], str]], set[str]]:
    """(tool → (entry ids, here), tools listed with a reason) from the table file."""
    covered: dict[str, tuple[list[str], str]] = {}
    reasons: set[str] = set()
    section = ""
    for line in TABLE.read_text().splitlines():
        if line.startswith("## "):
            section = line
        m = (_REASON if section else _ROW).match(line)
        if not m or m.group(1) == "tool":
            continue
        if section:
            reasons.update(t.strip() for t in m.group(1).split(","))
        else:
            covered[m.group(1)] = ([i.strip() for i in m.group(2).split(",")], m.group(3))
    return covered, reasons


def test_the_table_is_generated_from_the_lists_and_the_entries() -> None:
    """TOOLS-l-z.md is not kept by hand: classic-tools.json and the entries' tools: are its one home."""
    from gpttrace_py.classic_tools import bcc_l_z

    assert TABLE.read_text() == bcc_l_z(), (
        "regenerate it: .venv/bin/python -c 'from gpttrace_py.classic_tools import bcc_l_z; "
        "print(bcc_l_z(), end=\"\")' > examples_corpus/TOOLS-l-z.md")


def _raw(entry_id: str) -> dict:
    return yaml.safe_load((ROOT / "examples_corpus" / f"{entry_id}.yaml").read_text())


def test_every_tool_l_z_is_covered_or_has_a_reason() -> None:
    covered, reasons = _rows()
    assert not set(covered) & reasons
    assert len(covered) + len(reasons) == 89, (len(covered), len(reasons))
    for tool, (ids, _) in covered.items():
        for entry_id in ids:
            assert tool in (_raw(entry_id).get("tools") or []), f"{entry_id}.yaml does not list {tool} in tools:"


@pytest.mark.kernel
def test_table_says_what_runs_here() -> None:
    """'runs here' rows fit this kernel; 'needs' rows carry needs_only and their spec does not fit."""
    from gpttrace_py.cli.examples import runnable_here
    from gpttrace_py.corpus import by_id
    from gpttrace_py.kernel.catalog import Catalog

    catalog = Catalog()
    covered, _ = _rows()
    for tool, (ids, here) in covered.items():
        for entry_id in ids:
            raw, entry = _raw(entry_id), by_id(entry_id)
            assert entry is not None
            if here.startswith("runs here"):
                assert runnable_here(entry, catalog) is None, f"{tool}: {entry_id} does not fit this kernel"
                assert ("substitute" in here) == bool(raw.get("substitute")), entry_id
            else:
                assert raw.get("needs_only") is True and raw["original"]["needs"] in here, entry_id
                assert runnable_here(entry, catalog) is not None, f"{entry_id} is marked needs-only but fits here"


# Debian's python3 by path: a python3 earlier in PATH (pyenv) may be another build with another process name.
PY = "/usr/bin/python3"

# (entry, workload, regexes its stdout must match)
RUNS = [
    ("solisten", PY + " -c \"import socket,time; s=socket.socket(); s.bind(('127.0.0.1', 47123)); s.listen(); "
     "time.sleep(0.5)\"", [r"python3\s.*127\.0\.0\.1\s+47123"]),
    ("tcptracer", PY + " -c \"import socket; s=socket.socket(); "
     "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 47124)); s.listen(); "
     "c=socket.create_connection(('127.0.0.1', 47124)); a,_=s.accept(); "
     "c.close(); a.close()\"", [r"^connect\s.*127\.0\.0\.1\s+47124\s*$", r"^close\s.*47124"]),
    ("tcptop", PY + " -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 47125)); s.listen(); "
     "c=socket.create_connection(('127.0.0.1', 47125)); a,_=s.accept(); c.sendall(b'x' * 3000000); c.close(); "
     "n=0\nwhile (d := a.recv(65536)): n += len(d)\"", [r"python3\s+tracepoint:sock:sock_send_length\s+[0-9]{7}"]),
    ("shmsnoop", "sh -c 'id=$(ipcmk -M 4096 | tr -dc 0-9); ipcrm -m \"$id\"'",
     [r"ipcmk\s+tracepoint:syscalls:sys_exit_shmget\s+\d+", r"ipcrm\s+tracepoint:syscalls:sys_exit_shmctl\s+0\b"]),
    ("pidpersec", "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do /bin/true; "
     "done; sleep 1.2'", [r"New processes in the last second\nCOUNT: (2[5-9]|[3-9]\d|\d{3,})"]),
    ("uthreads", PY + " -c \"import threading; t=threading.Thread(target=len, args=('x',)); t.start(); t.join()\"",
     [r"^\d+\s+\d+\s+python3\s+\S+$"]),
    ("vfsstat", "dd if=/dev/zero of=/dev/null bs=1 count=20000",
     [r"sys_enter_read\s+\d*[2-9]\d{4}|sys_enter_read\s+\d{6}"]),
    ("offwaketime", "sleep 1", [r"^sleep,\s*$", r"do_nanosleep", r"hrtimer_wakeup"]),
    ("tcpdrop", PY + " -c \"import socket\ntry: socket.create_connection(('127.0.0.1', 9))\nexcept OSError: pass\"",
     [r"^python3\s+IPv4\s+NO_SOCKET\s+tcp_v4_rcv"]),
    ("netqtop", PY + " -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
     "[s.sendto(b'y' * 1000, ('127.0.0.1', 9)) for _ in range(300)]\"",
     [r"^lo\s+\d+\s+tracepoint:net:net_dev_start_xmit\s+\d{3,}"]),
    ("wqlat", "sleep 1.5", [r"Time from queueing to execution \(us\)", r"^\[\d+, \d+\)\s+\d+"]),
]


@pytest.mark.kernel
@pytest.mark.parametrize(("entry_id", "workload", "patterns"), RUNS, ids=[r[0] for r in RUNS])
def test_entry_runs_by_name_with_a_workload(entry_id: str, workload: str, patterns: list[str]) -> None:
    r = run_cli("examples", "run", entry_id, "--yes", "-d", "8", "-c", workload, timeout=90)
    assert r.returncode in (0, 130), r.stderr[-1500:]
    for rx in patterns:
        assert re.search(rx, r.stdout, re.M), f"{entry_id}: stdout lacks /{rx}/\n{r.stdout[-2500:]}\n{r.stderr[-800:]}"


# Debian's python3 (3.11) fires function__entry/return only in a process with a profile hook (the entries say so),
# so the workload sets one before the calls it expects to see; its garbage collections fire either way.
_PY_WORKLOAD = """
import gc, sys
def gpttrace_probe_fn(x):
    return x
sys.setprofile(lambda *a: None)
for i in range(77):
    gpttrace_probe_fn(i)
sys.setprofile(None)
gc.collect()
"""

PY_RUNS = [
    ("ucalls", [r"^\d+\s+\S+/work\.py\s+gpttrace_probe_fn\s+77$"]),
    ("ugc", [r"^\d+\s+python3\s+2\s+\d+\s+\d+$"]),
    ("ustat", [r"^\d+\s+python3\s+usdt:\S+:python:function__entry\s+(7[7-9]|[89]\d|\d{3,})$",
               r"^\d+\s+python3\s+usdt:\S+:python:gc__start\s+\d+$"]),
]


@pytest.mark.kernel
@pytest.mark.parametrize(("entry_id", "patterns"), PY_RUNS, ids=[r[0] for r in PY_RUNS])
def test_python_usdt_entry_sees_the_workload(entry_id: str, patterns: list[str], tmp_path: Path) -> None:
    script = tmp_path / "work.py"
    script.write_text(_PY_WORKLOAD)
    r = run_cli("examples", "run", entry_id, "--yes", "-d", "8", "-c", f"/usr/bin/python3 {script}", timeout=90)
    assert r.returncode in (0, 130), r.stderr[-1500:]
    for rx in patterns:
        assert re.search(rx, r.stdout, re.M), f"{entry_id}: stdout lacks /{rx}/\n{r.stdout[-2500:]}\n{r.stderr[-800:]}"
