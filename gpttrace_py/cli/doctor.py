"""``gpttrace doctor``: what this machine offers for tracing, and the fix for each missing piece."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..kernel.features import Features


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "json_out", is_flag=True, help="Print the facts as JSON.")
@click.option(
    "--probe/--no-probe",
    default=True,
    show_default=True,
    help="Try loading fentry and LSM programs once (cached per boot) to see if the kernel allows them.",
)
def doctor(json_out: bool, probe: bool) -> None:
    """Check root, bpftrace, BCC, tracefs, BTF, kprobes, uprobes, fentry and LSM support."""
    import json
    import os

    from ..kernel.features import as_dict, detect, find_bcc_python, probe_loadable
    from ..kernel.tracefs import TracepointIndex, tracefs_root

    f = detect()
    f.bcc_python = find_bcc_python()
    if probe:
        f = probe_loadable(f)
    n_tp = len(TracepointIndex(tracefs_root()).all_names()) if f.tracefs else 0
    headers = os.path.exists(f"/lib/modules/{f.kernel}/build")
    if json_out:
        click.echo(json.dumps({**as_dict(f), "tracepoints": n_tp, "kernel_headers": headers}, indent=2))
        return
    rows = checks(f, n_tp, headers)
    problems = 0
    for name, value, fix in rows:
        ok = bool(value) and value != "not probed"
        mark = "ok " if ok else "-- "
        shown = "yes" if value is True else ("no" if value in (False, None) else str(value))
        click.echo(f"{mark} {name:<15} {shown}")
        if not ok:
            problems += 1
            click.echo(f"    fix: {fix}")
    essential = f.root and f.tracefs and (f.bpftrace or f.bcc_python)
    click.echo("\nReady to trace." if essential else "\nNot ready: fix the items above.")
    if not essential:
        raise SystemExit(2)


def checks(f: Features, n_tp: int, headers: bool) -> list[tuple[str, object, str]]:
    """(what, what this machine has, how to fix it) for each thing tracing needs; a falsy value is missing."""
    return [
        ("root", f.root, "run gpttrace as root (sudo gpttrace ...): loading BPF programs needs CAP_BPF/CAP_SYS_ADMIN"),
        ("bpftrace", f.bpftrace and f"{f.bpftrace} (v{f.bpftrace_version})", "apt-get install -y bpftrace"),
        (
            "BCC",
            f.bcc_python and f"import bcc works with {f.bcc_python}",
            "apt-get install -y python3-bpfcc bpfcc-tools (or set GPTTRACE_BCC_PYTHON)",
        ),
        (
            "kernel headers",
            headers and f"/lib/modules/{f.kernel}/build",
            "apt-get install -y linux-headers-amd64, then link /usr/src/linux-headers-*-amd64 to "
            "/lib/modules/$(uname -r)/build",
        ),
        ("tracefs", f.tracefs and f"{f.tracefs} ({n_tp} tracepoints)", "mount -t tracefs nodev /sys/kernel/tracing"),
        ("BTF", f.btf and "/sys/kernel/btf/vmlinux", "a kernel built with CONFIG_DEBUG_INFO_BTF=y"),
        ("kprobes", f.kprobes, "a kernel with CONFIG_KPROBES=y; gpttrace uses tracepoints instead"),
        ("uprobes", f.uprobes, "a kernel with CONFIG_UPROBE_EVENTS=y"),
        ("ring buffers", f.ringbuf, "kernel 5.8 or later; BCC programs fall back to perf buffers"),
        (
            "fentry/kfunc",
            f.kfunc if f.kfunc is not None else "not probed",
            "this kernel refuses fentry/fexit programs; gpttrace uses tracepoints instead",
        ),
        (
            "BPF LSM",
            f.lsm if f.lsm is not None else "not probed",
            f.notes.get("lsm", "boot with lsm=...,bpf; gpttrace can only observe (not deny) without it"),
        ),
    ]
