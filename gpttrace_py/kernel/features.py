"""What this machine can do for tracing: detected, never assumed.

Cheap facts (files that exist) are read each time; facts that need a trial load (fentry/kfunc, BPF LSM)
are probed once per boot and cached under the user cache dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from .. import paths, safefs
from .tracefs import tracefs_root

BCC_INTERPRETERS = ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3.11", "/usr/bin/python3.12")


@dataclass
class Features:
    root: bool
    tracefs: str | None
    btf: bool
    kprobes: bool
    uprobes: bool
    bpftrace: str | None
    bpftrace_version: str | None
    bcc_python: str | None
    kernel: str
    ringbuf: bool
    kfunc: bool | None = None  # None: not probed yet
    lsm: bool | None = None
    hw_counters: bool = True  # a CPU PMU: cycles, cache misses, branch misses (VMs often have none)
    notes: dict[str, str] = field(default_factory=dict)

    def supports_probe_kind(self, kind: str) -> bool:
        """Whether this kernel has what probes of ``kind`` need (kinds.Kind.needs); kfunc and lsm count only
        once a trial load proved them."""
        from ..spec.kinds import KINDS  # (here: spec/ loads pydantic, which the quick paths that read features skip)

        need = KINDS[kind].needs if kind in KINDS else None
        if need is None:
            return True
        have = {"tracefs": self.tracefs is not None, "kprobes": self.kprobes, "uprobes": self.uprobes,
                "kfunc": self.kfunc, "lsm": self.lsm, "hw_counters": self.hw_counters}
        return bool(have[need])


def _kernel_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def find_bpftrace() -> str | None:
    env = os.environ.get("GPTTRACE_BPFTRACE")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    return shutil.which("bpftrace") or next(
        (p for p in ("/usr/bin/bpftrace", "/usr/sbin/bpftrace", "/usr/local/bin/bpftrace") if os.path.exists(p)), None
    )


@lru_cache(maxsize=4)
def bpftrace_version(path: str) -> str | None:
    """The version of the bpftrace at ``path``. Starting bpftrace costs 30-100 ms (it loads LLVM), so the answer
    is remembered in the cache dir for that binary (path, size, mtime, inode)."""
    cache = paths.cache_dir() / "bpftrace-version.json"
    try:
        st = os.stat(path)
        key: list[object] | None = [path, st.st_size, st.st_mtime_ns, st.st_ino]
    except OSError:
        key = None
    if key is not None:
        try:
            data = json.loads(safefs.read_file(cache, 1 << 16) or b"null")
            if data.get("key") == key and isinstance(data.get("version"), str):
                return str(data["version"])
        except (OSError, ValueError, AttributeError):
            pass
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"v?(\d+\.\d+(?:\.\d+)?)", out)
    version = m.group(1) if m else None
    if key is not None and version is not None:
        safefs.write_file(cache, json.dumps({"key": key, "version": version}).encode())
    return version


def find_bcc_python() -> str | None:
    """An interpreter that can ``import bcc``: GPTTRACE_BCC_PYTHON, then the system Pythons."""
    env = os.environ.get("GPTTRACE_BCC_PYTHON")
    candidates = (env,) if env else BCC_INTERPRETERS
    for c in candidates:
        if c and os.path.exists(c) and _can_import_bcc(c):
            return c
    return None


@lru_cache(maxsize=8)
def _can_import_bcc(python: str) -> bool:
    # Look for the module on disk first (an import costs ~0.3 s); fall back to trying it.
    try:
        out = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('bcc') is not None)"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return out.strip() == "True"


def detect() -> Features:
    tfs = tracefs_root()
    bt = find_bpftrace()
    f = Features(
        root=os.geteuid() == 0,
        tracefs=str(tfs) if tfs else None,
        btf=os.path.exists("/sys/kernel/btf/vmlinux"),
        kprobes=bool(tfs and (tfs / "kprobe_events").exists()),
        uprobes=bool(tfs and (tfs / "uprobe_events").exists()),
        bpftrace=bt,
        bpftrace_version=bpftrace_version(bt) if bt else None,
        bcc_python=None,
        kernel=os.uname().release,
        ringbuf=_kernel_version() >= (5, 8),
        hw_counters=_has_cpu_pmu(),
    )
    cached = _load_probed()
    f.kfunc = cached.get("kfunc")
    f.lsm = cached.get("lsm")
    return f


PMU_DIR = "/sys/bus/event_source/devices"


def _has_cpu_pmu() -> bool:
    """Does a CPU PMU exist (x86 "cpu", hybrid "cpu_core"/"cpu_atom", Arm "armv8_pmuv3_0"...)? Software,
    tracepoint, uprobe, kprobe, breakpoint and msr event sources count no hardware events."""
    try:
        names = os.listdir(PMU_DIR)
    except OSError:
        return False
    return any(n in ("cpu", "cpu_core", "cpu_atom") or n.startswith(("armv", "arm_cortex", "riscv_pmu", "hv_24x7"))
               for n in names)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _probe_cache() -> Path:
    return paths.cache_dir() / "features.json"


def _load_probed() -> dict[str, bool]:
    try:
        data = json.loads(safefs.read_file(_probe_cache(), 1 << 16) or b"{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    if data.get("boot_id") != _boot_id() or data.get("kernel") != os.uname().release:
        return {}
    return {k: v for k, v in data.items() if k in ("kfunc", "lsm") and isinstance(v, bool)}


def probe_loadable(features: Features) -> Features:
    """Try the features that only a load can prove (fentry/kfunc and BPF LSM), once per boot."""
    if features.kfunc is not None and features.lsm is not None:
        return features
    kfunc = lsm = False
    if features.bpftrace and features.btf and features.root:
        kfunc = _bpftrace_loads(features.bpftrace, 'kfunc:vfs_read { exit(); } interval:ms:50 { exit(); }')
        lsm_enabled = "bpf" in _read("/sys/kernel/security/lsm")
        lsm = lsm_enabled and _bpftrace_loads(features.bpftrace, 'lsm:file_open { exit(); } interval:ms:50 { exit(); }')
        if not lsm_enabled:
            features.notes["lsm"] = "BPF LSM is not in /sys/kernel/security/lsm (boot with lsm=...,bpf)"
    features.kfunc, features.lsm = kfunc, lsm
    safefs.write_file(_probe_cache(), json.dumps({"boot_id": _boot_id(), "kernel": features.kernel,
                                                  "kfunc": kfunc, "lsm": lsm}).encode())
    return features


def _bpftrace_loads(bpftrace: str, program: str) -> bool:
    try:
        proc = subprocess.run([bpftrace, "-e", program], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def as_dict(f: Features) -> dict[str, object]:
    return asdict(f)
