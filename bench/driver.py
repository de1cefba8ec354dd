#!/usr/bin/python3 -IS
"""Run a hand-written bpftrace program exactly the way gpttrace runs the programs it writes.

    driver.py [--text] [--direct] [--linger S] [-c CMD] PROGRAM.bt

Like gpttrace's runner (gpttrace_py/run/session.py): bpftrace starts in its own session with stdin from
/dev/null and SIGINT as its parent-death signal, and the same BPFTRACE_STRLEN/BPFTRACE_MAP_KEYS_MAX defaults;
the driver waits for the program's first line (its BEGIN printf: every probe is attached by then), starts
CMD (no shell; its stdout goes to our stderr, as with gpttrace -c), and sends SIGINT ``--linger`` seconds
after CMD exits, so the END block and the maps are printed (again every second if bpftrace is still there,
SIGKILL after 10 s, as gpttrace does). bpftrace's output is copied to stdout as it
arrives, unparsed (the least any wrapper can do).

--text     plain bpftrace output instead of ``-f json``
--direct   bpftrace writes straight to our stdout, which must be a regular file (no pipe, no copy); the
           ready line is found by watching the file

On exit it prints one line on stderr:
    driver-timings {"spawn": T, "attached": T, "end": T, "lost": N, "rc": RC, "killed": BOOL, "resent": N}
with CLOCK_MONOTONIC seconds, comparable with gpttrace's GPTTRACE_TIMINGS=1 line.
Runs under the system python3 with -I -S so that its own start-up costs as little as possible.
"""

import ctypes
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
STOP_GRACE = 10.0  # gpttrace's RunOptions.stop_grace
LOST_TEXT = re.compile(rb"^Lost (\d+) events")


def _die_with_parent(parent):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    except OSError:
        pass
    if os.getppid() != parent:
        os._exit(1)


def main(argv):
    text = direct = False
    linger = 0.05
    command = None
    bpftrace = os.environ.get("GPTTRACE_BPFTRACE") or "/usr/bin/bpftrace"
    args = list(argv)
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt == "--text":
            text = True
        elif opt == "--direct":
            direct = True
        elif opt == "--linger":
            linger = float(args.pop(0))
        elif opt == "-c":
            command = shlex.split(args.pop(0))
        else:
            sys.exit(f"driver.py: unknown option {opt}")
    if len(args) != 1:
        sys.exit(__doc__.split("\n\n")[1])
    program = args[0]

    env = dict(os.environ)
    env.setdefault("BPFTRACE_STRLEN", "128")
    env.setdefault("BPFTRACE_MAP_KEYS_MAX", "4096")
    argv_bt = [bpftrace] + ([] if text else ["-f", "json"]) + [program]
    out = sys.stdout.buffer
    spawn = time.monotonic()
    parent = os.getpid()
    proc = subprocess.Popen(argv_bt, stdout=(out.fileno() if direct else subprocess.PIPE), stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: _die_with_parent(parent), env=env)
    state = {"attached": None, "lost": 0, "stopped": False, "killed": False, "resent": 0}
    stderr_chunks = []
    finished = threading.Event()

    def read_stderr():
        for raw in proc.stderr:
            stderr_chunks.append(raw)

    threading.Thread(target=read_stderr, daemon=True).start()

    def send_sigint():
        try:
            os.kill(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def stop():
        """SIGINT, again every second while bpftrace is still there, SIGKILL after STOP_GRACE s: as gpttrace's
        runner does. bpftrace 0.17 misses a SIGINT that lands while it is not blocked in epoll_wait (its poll
        loop only checks the flag on EINTR or when an event comes), and then waits for the next event."""
        if not state["stopped"] and proc.poll() is None:
            state["stopped"] = True
            send_sigint()

            def watchdog():
                deadline = time.monotonic() + STOP_GRACE
                while time.monotonic() < deadline:
                    try:
                        proc.wait(timeout=min(1.0, max(0.05, deadline - time.monotonic())))
                        return
                    except subprocess.TimeoutExpired:
                        state["resent"] += 1
                        send_sigint()
                if proc.poll() is None:
                    state["killed"] = True
                    proc.kill()

            threading.Thread(target=watchdog, daemon=True).start()

    def on_ready():
        state["attached"] = time.monotonic()
        if command is None:
            return
        workload = subprocess.Popen(command, stdout=sys.stderr.fileno())

        def watch():
            workload.wait()
            if not finished.wait(linger):
                stop()

        threading.Thread(target=watch, daemon=True).start()

    if direct:
        path = f"/proc/self/fd/{out.fileno()}"
        while proc.poll() is None and state["attached"] is None:
            try:
                with open(path, "rb") as fh:
                    head = fh.read(4096)
            except OSError:
                head = b""
            lines = head.split(b"\n")[:-1]  # complete lines
            if any((not ln.startswith(b"Attaching ")) if text else ln.startswith(b'{"type": "printf"') for ln in lines):
                on_ready()
                break
            time.sleep(0.002)
        proc.wait()
    else:
        write = out.write
        for raw in proc.stdout:
            write(raw)
            if state["attached"] is None:
                if (not raw.startswith(b"Attaching ")) if text else raw.startswith(b'{"type": "printf"'):
                    out.flush()
                    on_ready()
            elif raw.startswith(b'{"type": "lost_events"'):
                try:
                    state["lost"] += int(json.loads(raw)["data"]["events"])
                except (ValueError, KeyError, TypeError):
                    pass
            elif text and raw.startswith(b"Lost "):
                m = LOST_TEXT.match(raw)
                if m:
                    state["lost"] += int(m.group(1))
        proc.wait()
        out.flush()
    finished.set()
    end = time.monotonic()
    err = b"".join(stderr_chunks).decode("utf-8", "replace")
    for line in err.splitlines():
        m = re.match(r"^Lost (\d+) events", line)
        if m:
            state["lost"] += int(m.group(1))
        elif "RLIMIT_MEMLOCK" not in line and line.strip():
            sys.stderr.write(line + "\n")
    sys.stderr.write("driver-timings " + json.dumps({"spawn": spawn, "attached": state["attached"], "end": end,
                                                     "lost": state["lost"], "rc": proc.returncode,
                                                     "killed": state["killed"], "resent": state["resent"]}) + "\n")
    return 0 if state["attached"] is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
