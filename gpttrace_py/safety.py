"""Safety: what a program may do, who may load it, and whether its text says what the spec says.

* ``check(text, backend, allow_unsafe)`` reads the **rendered program**, not the spec: whatever produced the
  text (a planner, a template, a hand edit), a call that writes user memory, sends signals, overrides return
  values, runs commands or drops packets is found here and refused unless the user passed ``--unsafe``.
  bpftrace itself also refuses ``system``/``signal``/``override`` unless it is started with ``--unsafe``,
  which the runner passes only when the user did: two independent locks.
* ``preflight(backend)`` runs before anything is planned or loaded: root and the capabilities to load eBPF
  (CapEff from /proc/self/status), a mounted tracefs, and the tracer for the backend. Each failure is one
  line, a fix, and exit code 2.
* ``check`` finds bpftrace calls outside strings and comments with the one bpftrace lexer
  (lang/bpftrace_lexer.py, which also outlines a script's structure for the injection tests).

bpftrace 0.17 has no builtin that writes user memory; its unsafe builtins are ``system``, ``signal`` and
``override`` (plus C preprocessor macros, which could spell them indirectly and are refused too).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ExitCode, GpttraceError, UsageError
from .lang.bpftrace_lexer import bpftrace_tokens, called_names

UNSAFE_CALLS: dict[str, dict[str, str]] = {
    "bpftrace": {
        "system": "runs a shell command as root for each event",
        "signal": "sends a signal to (and can kill) the traced process",
        "override": "changes a kernel function's return value",
    },
    "bcc": {
        "bpf_override_return": "changes a kernel function's return value",
        "bpf_send_signal": "sends a signal to (and can kill) the traced process",
        "bpf_send_signal_thread": "sends a signal to (and can kill) the traced thread",
        "bpf_probe_write_user": "writes into the traced process's memory",
        "bpf_copy_to_user": "writes into a process's memory",
        "BPF_FUNC_override_return": "changes a kernel function's return value (helper called by number)",
        "BPF_FUNC_send_signal": "sends a signal (helper called by number)",
        "BPF_FUNC_send_signal_thread": "sends a signal (helper called by number)",
        "BPF_FUNC_probe_write_user": "writes into the traced process's memory (helper called by number)",
        "XDP_DROP": "drops network packets",
        "XDP_TX": "bounces network packets back out",
        "XDP_REDIRECT": "redirects network packets",
        "TC_ACT_SHOT": "drops network packets",
        "TC_ACT_REDIRECT": "redirects network packets",
        "bpf_redirect": "redirects network packets",
        "bpf_skb_store_bytes": "rewrites network packets",
        "os.system": "runs a shell command as root",
        "os.popen": "runs a shell command as root",
        "os.kill": "sends signals",
        "subprocess": "runs commands as root",
    },
}
_BCC_PATTERNS: list[tuple[re.Pattern[str], str, str]] = [
    # token pasting works only in a macro body (backslash-continued lines are joined first)
    (re.compile(r"(?m)^[ \t]*#[ \t]*define\b[^\n]*##"), "##",
     "C preprocessor token pasting (can spell a helper's name)"),
    (re.compile(r"\bos\.(?:exec|spawn)\w*\s*\("), "os.exec/os.spawn", "runs programs as root"),
]

# -- unsafe capabilities -----------------------------------------------------------------------------------
def unsafe_uses(text: str, backend: str) -> list[tuple[str, str]]:
    """(call, what it does) for each unsafe capability the program text uses."""
    found: list[tuple[str, str]] = []

    def add(name: str, why: str) -> None:
        if all(n != name for n, _ in found):
            found.append((name, why))

    if backend == "bpftrace":
        tokens = bpftrace_tokens(text)
        table = UNSAFE_CALLS["bpftrace"]
        for name in called_names(tokens):
            if name in table:
                add(name, table[name])
        for tok in tokens:
            if tok.kind != "directive":
                continue
            if tok.pos == 0 and tok.text.startswith("#!"):
                if re.search(r"\s--unsafe\b", tok.text):
                    add("--unsafe", "asks bpftrace for unsafe mode")
            elif not re.match(r"#\s*include\s*[<\"]", tok.text):
                add(tok.text.split()[0] if tok.text.split() else "#",
                    "C preprocessor directive (can spell a call indirectly)")
        return found
    # BCC: the C program is a string inside Python, so strings are not skipped; a mention in a comment is
    # refused too (conservative: --unsafe overrides).
    for name, why in UNSAFE_CALLS.get("bcc", {}).items():
        if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
            add(name, why)
    joined = re.sub(r"\\\n", " ", text)
    for pattern, name, why in _BCC_PATTERNS:
        if pattern.search(joined):
            add(name, why)
    for name, why in outside_bcc_allowlist(text):
        add(name, why)
    return found


# -- the BCC allowlist: what gpttrace's own BCC programs contain, and nothing else ---------------------------
# A rendered BCC program is ours (templates/bcc): these are the modules it imports, the attributes of them it
# uses, and the BPF helpers and map macros its C text calls. Anything else is refused (unless --unsafe): a
# program that imports another module, reaches a module through a variable, uses ctypes to load a library,
# touches dunder attributes, calls a helper by number or through a function pointer, or a tail call.
BCC_IMPORTS = {"argparse", "ctypes", "errno", "json", "os", "signal", "socket", "sys", "time"}
BCC_FROM_IMPORTS = {
    "bcc": {"BPF", "PerfHWConfig", "PerfSWConfig", "PerfType", "USDT"},
    "bcc.libbcc": {"lib"},
    "pyroute2": {"IPRoute"},
    "pyroute2.netlink.exceptions": {"NetlinkError"},
}
BCC_MODULE_ATTRS = {
    "argparse": {"ArgumentParser"},
    "ctypes": {"POINTER", "Structure", "cast", "sizeof"},  # and the c_* types
    "errno": {"EEXIST", "EFAULT", "EINVAL", "errorcode"},
    "json": {"dumps"},
    "os": {"close", "geteuid", "getpid", "strerror"},
    "signal": {"SIGINT", "SIGTERM", "signal"},
    "socket": {"AF_INET", "AF_INET6", "if_nametoindex", "inet_ntop"},
    "sys": {"exit", "stderr", "stdout"},
    "time": {"monotonic", "sleep", "strftime"},
    "bcc.libbcc.lib": {"bpf_link_create"},
}
BCC_FORBIDDEN_NAMES = {"__import__", "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "globals",
                       "locals", "vars", "breakpoint", "input", "__builtins__", "__loader__", "__spec__"}
BCC_HELPERS = {
    "bpf_get_current_cgroup_id", "bpf_get_current_comm", "bpf_get_current_pid_tgid", "bpf_get_current_uid_gid",
    "bpf_get_current_task", "bpf_get_current_task_btf", "bpf_get_smp_processor_id", "bpf_get_prandom_u32",
    "bpf_ktime_get_ns", "bpf_ktime_get_boot_ns", "bpf_log2l", "bpf_log2", "bpf_get_stackid",
    "bpf_probe_read", "bpf_probe_read_str", "bpf_probe_read_kernel", "bpf_probe_read_kernel_str",
    "bpf_probe_read_user", "bpf_probe_read_user_str", "bpf_ntohs", "bpf_htons", "bpf_ntohl", "bpf_htonl",
    "bpf_perf_event_output", "bpf_ringbuf_output", "bpf_ringbuf_reserve", "bpf_ringbuf_submit",
    "bpf_ringbuf_discard", "bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_map_delete_elem",
    "bpf_get_ns_current_pid_tgid", "bpf_skb_load_bytes", "bpf_usdt_readarg", "bpf_usdt_readarg_p",
}
BCC_MACROS = {"BPF_ARRAY", "BPF_HASH", "BPF_HISTOGRAM", "BPF_PERCPU_ARRAY", "BPF_PERCPU_HASH", "BPF_RINGBUF_OUTPUT",
              "BPF_STACK_TRACE", "BPF_PERF_OUTPUT"}
_C_CALL = re.compile(r"\b((?:bpf|BPF)_\w+)\s*\(")
_C_FORBIDDEN = [
    (re.compile(r"\bBPF_FUNC_\w+"), "BPF_FUNC_*", "calls a BPF helper by number"),
    (re.compile(r"\(\s*\*\s*\w*\s*\)\s*\("), "(*)(...)", "calls through a function pointer (a helper by number)"),
    (re.compile(r"\b(?:asm|__asm__|__asm)\b"), "asm", "inline assembly"),
    (re.compile(r"\.\s*call\s*\("), ".call()", "a tail call into another program"),
]


def outside_bcc_allowlist(text: str) -> list[tuple[str, str]]:
    """(what, why) for everything in a BCC program outside what gpttrace's BCC programs contain."""
    import ast

    found: list[tuple[str, str]] = []

    def add(name: str, why: str) -> None:
        if (name, why) not in found:
            found.append((name, why))

    def check_c(c_text: str) -> None:
        for name in _C_CALL.findall(c_text):
            if name.startswith("bpf_") and name not in BCC_HELPERS:
                add(name, "a BPF helper outside those gpttrace's programs use")
            elif name.startswith("BPF_") and name not in BCC_MACROS and not name.startswith("BPF_FUNC_"):
                add(name, "a BCC macro outside those gpttrace's programs use")
        for pattern, name, why in _C_FORBIDDEN:
            if pattern.search(c_text):
                add(name, why)

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        check_c(text)
        add("(not Python)", "not a BCC program gpttrace renders (it does not parse as Python)")
        return found
    # C text can only be in a string: every string of the program is checked as C (BPF_TEXT and any other)
    check_c("\n".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)))
    modules: dict[str, str] = {}  # a name bound by an import -> the module (or object) it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name not in BCC_IMPORTS:
                    add(f"import {a.name}", "a module gpttrace's programs do not import")
                modules[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            allowed = BCC_FROM_IMPORTS.get(node.module or "", set()) if not node.level else set()
            for a in node.names:
                if a.name not in allowed:
                    add(f"from {node.module} import {a.name}", "a module gpttrace's programs do not import")
                modules[a.asname or a.name] = f"{node.module}.{a.name}"
    module_names = {k: v for k, v in modules.items() if v in BCC_MODULE_ATTRS}
    bases: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("__") and node.attr != "__init__":
                add(f".{node.attr}", "a dunder attribute (reaches Python's internals)")
            if isinstance(node.value, ast.Name) and node.value.id in module_names:
                bases.add(id(node.value))
                module = module_names[node.value.id]
                ok = node.attr in BCC_MODULE_ATTRS[module] or (module == "ctypes" and node.attr.startswith("c_"))
                if not ok:
                    add(f"{module}.{node.attr}", "a function gpttrace's programs do not use")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in BCC_FORBIDDEN_NAMES or (node.id.startswith("__") and node.id != "__name__"):
                add(node.id, "runs or reaches code outside the program")
            elif node.id in module_names and id(node) not in bases and isinstance(node.ctx, ast.Load):
                add(node.id, "a module used other than through its allowed functions")
    return found


def describe(uses: list[tuple[str, str]]) -> str:
    return "; ".join(f"{name}{'()' if name[:1].isalpha() and '.' not in name else ''} {why}" for name, why in uses)


def check(text: str, backend: str, allow_unsafe: bool) -> list[tuple[str, str]]:
    """Refuse (exit 2) a program that changes the system unless ``allow_unsafe``; return what it uses."""
    uses = unsafe_uses(text, backend)
    if uses and not allow_unsafe:
        raise GpttraceError(f"refusing to run a program that changes the system: {describe(uses)}",
                            "read the program, then pass --unsafe if that is what you want (-y alone never allows it)",
                            ExitCode.USAGE)
    return uses


# -- who may load programs -----------------------------------------------------------------------------------
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


def effective_capabilities(status_text: str | None = None) -> int | None:
    """The CapEff mask of this process (from /proc/self/status), or None when it cannot be read."""
    if status_text is None:
        try:
            status_text = Path("/proc/self/status").read_text()
        except OSError:
            return None
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)\s*$", status_text, re.M)
    return int(m.group(1), 16) if m else None


def can_load_bpf(caps: int) -> bool:
    has = lambda n: bool(caps >> n & 1)  # noqa: E731
    return has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON))


def privilege_problem(euid: int | None = None, caps: int | None = None) -> tuple[str, str] | None:
    """(reason, fix) when this process cannot load eBPF programs, else None."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return (f"loading eBPF programs needs root (gpttrace runs as uid {euid})",
                "run it as root: sudo gpttrace ...")
    caps = effective_capabilities() if caps is None else caps
    if caps is not None and not can_load_bpf(caps):
        return ("running as root but without the capabilities to load eBPF programs "
                f"(needs CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON; CapEff is {caps:#x})",
                "run it where root keeps its capabilities: not under setpriv/capsh dropping them, and in a container "
                "with --cap-add SYS_ADMIN (or BPF and PERFMON), or --privileged")
    return None


def check_privileges() -> None:
    problem = privilege_problem()
    if problem:
        raise UsageError(*problem)


def check_tracefs() -> None:
    from .kernel.tracefs import TRACEFS_CANDIDATES, tracefs_root

    if tracefs_root() is not None:
        return
    override = os.environ.get("GPTTRACE_TRACEFS")
    if override:
        raise UsageError(f"GPTTRACE_TRACEFS={override} is not a tracefs mount (it has no events/ directory)",
                         "unset GPTTRACE_TRACEFS, or point it at a mounted tracefs")
    raise UsageError(f"tracefs is not mounted (looked in {' and '.join(TRACEFS_CANDIDATES)})",
                     "mount it: mount -t tracefs nodev /sys/kernel/tracing")


def tool_problem(backend: str) -> tuple[str, str] | None:
    """(reason, fix) when the tracer for ``backend`` (bpftrace, bcc or auto) cannot be started."""
    from .kernel.features import find_bcc_python, find_bpftrace

    def bpftrace_problem() -> tuple[str, str] | None:
        if find_bpftrace() is not None:
            return None
        env = os.environ.get("GPTTRACE_BPFTRACE")
        if env:
            return (f"GPTTRACE_BPFTRACE={env} is not an executable file",
                    "point it at bpftrace, or unset it to use the bpftrace on PATH")
        return ("bpftrace is not installed",
                "apt-get install -y bpftrace (or set GPTTRACE_BPFTRACE, or use --backend bcc)")

    def bcc_problem() -> tuple[str, str] | None:
        if find_bcc_python() is not None:
            return None
        env = os.environ.get("GPTTRACE_BCC_PYTHON")
        if env:
            what = "does not exist" if not os.path.exists(env) else "cannot import bcc"
            return (f"GPTTRACE_BCC_PYTHON={env} {what}",
                    "point it at a Python that can `import bcc`, or unset it to use the system Python")
        return ("BCC is not installed (no Python here can `import bcc`)",
                "apt-get install -y python3-bpfcc bpfcc-tools (or set GPTTRACE_BCC_PYTHON, or use --backend bpftrace)")

    if backend == "bpftrace":
        return bpftrace_problem()
    if backend == "bcc":
        return bcc_problem()
    first = bpftrace_problem()
    if first is None:
        return None
    if bcc_problem() is None:
        return None
    return (f"neither bpftrace nor BCC can be used here ({first[0]})",
            "apt-get install -y bpftrace (or python3-bpfcc), or set GPTTRACE_BPFTRACE / GPTTRACE_BCC_PYTHON")


def check_tool(backend: str) -> None:
    problem = tool_problem(backend)
    if problem:
        raise UsageError(*problem)


def preflight(backend: str = "auto") -> None:
    """Everything that must hold before planning and loading; raises UsageError (exit 2) with the fix."""
    check_privileges()
    check_tracefs()
    check_tool(backend)
