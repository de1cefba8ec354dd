"""What a request names outright: syscalls ("chmod()", "the chmod syscall", "reads"), tracepoints
("sched:sched_wakeup") and user-space functions ("malloc()", "SSL_write calls"), as this machine has them."""

from __future__ import annotations

import re

from ..kernel.catalog import Catalog
from ..kernel.tracefs import Tracepoint
from .intent import Intent
from .intent_words import ordinary_word
from .vocabulary import COMMON_WORDS

# Syscall names that are also everyday words: only taken as a syscall when written as one ("read()",
# "the read syscall", "read calls").
AMBIGUOUS_SYSCALLS = {
    "read",
    "write",
    "open",
    "close",
    "kill",
    "exit",
    "time",
    "sync",
    "pause",
    "select",
    "poll",
    "link",
    "mount",
    "stat",
    "socket",
    "listen",
    "connect",
    "accept",
    "bind",
    "shutdown",
    "alarm",
    "wait4",
    "uname",
    "times",
    "brk",
    "pipe",
    "dup",
    "chroot",
    "ioctl",
    "fork",
    "clone",
    "access",
    "madvise",
    "msync",
    "flock",
    "futex",
    "reboot",
    "acct",
    "sysinfo",
    "capget",
    "capset",
    "kcmp",
    "personality",
    "quotactl",
    "rename",
    "truncate",
    "umask",
    "vhangup",
    "syslog",
    "tee",
    "splice",
}

# ambiguous names that are calls when they are the means ("sent by kill", "bytes moved by read"); not "by time"
MEANS_SYSCALLS = ("kill", "read", "write", "open", "close", "connect", "accept", "bind", "listen")

KNOWN_FUNCTIONS = {
    "malloc",
    "free",
    "calloc",
    "realloc",
    "getaddrinfo",
    "gethostbyname",
    "ssl_write",
    "ssl_read",
    "readline",
    "fopen",
    "mmap",
    "pthread_create",
    "pthread_mutex_lock",
    "strlen",
    "memcpy",
    "posix_memalign",
    "aligned_alloc",
    "dlopen",
}



def syscalls(it: Intent, catalog: Catalog) -> list[str]:
    """Syscalls the intent names: written as one ("chmod()", "chmod calls", "the chmod syscall"), or a word
    that can only be a syscall name ("fchownat", "openat")."""
    found: list[str] = []

    def add(name: str) -> None:
        name = name.removeprefix("sys_enter_").removeprefix("sys_exit_")
        if name not in found and catalog.syscall_tracepoint(name) is not None:
            found.append(name)

    for n in it.explicit_calls + it.names:
        add(n)
    for w in it.words:
        w = w.removeprefix("sys_enter_").removeprefix("sys_exit_")
        if len(w) > 3 and w not in AMBIGUOUS_SYSCALLS and w not in COMMON_WORDS:
            add(w)
    # a word that is also plain English names the call when it is the means: "signals sent by kill"
    for m in re.finditer(r"\b(?:by|with|via|using|through)\s+(?:the\s+)?([a-z_][a-z0-9_]*)\b", it.text):
        if m.group(1) in MEANS_SYSCALLS:
            add(m.group(1))
    # ... and "reads" and "writes" as nouns: "count reads by process", "histogram of writes"
    for m in re.finditer(r"\b(?:count|counts|counting|trace|show|log|number of|histogram of|distribution of|"
                         r"sizes? of|how many|total|all|slow|large|small|big|failed)\s+(?:the\s+|all\s+)?"
                         r"(read|write)s(?:\s+(?:and|or|&)\s+(read|write)s)?\b", it.text):
        for name in m.groups():
            if name:
                add(name)
    # ... and the object of "call": "who calls brk the most", "programs calling sync"
    for m in re.finditer(r"\bcall(?:s|ed|ing)?\s+(?:the\s+)?([a-z_][a-z0-9_]*)\b", it.text):
        if m.group(1) not in COMMON_WORDS:
            add(m.group(1))
    # ... and an amount read or written: "how much data does each process read"
    if re.search(r"\b(?:how much|bytes|data|amount)\b", it.text) and not it.has("disk", "disks", "block"):
        verb = re.search(r"\b(read|write|written|wrote|reads|writes|reading|writing)\b", it.text)
        if verb:
            add("read" if verb.group(1).startswith("read") else "write")
    # ... and how they went: "connect errors", "failed accepts", "read failures"
    means = "|".join(n for n in MEANS_SYSCALLS if n != "open")  # failed opens: the corpus has openat's
    for m in re.finditer(rf"\b({means})\s+(?:attempts?|errors?|failures?)\b"
                         rf"|\b(?:failed|failing|unsuccessful)\s+({means})(?:s|es)?\b", it.text):
        add(m.group(1) or m.group(2))
    # ... and the objects some calls make, when their making is asked about: "pipe creation", "new sockets"
    for m in re.finditer(r"\b(pipe|socket)s?\s+(?:creation|created|being created|made|opened)\b"
                         r"|\b(?:new|creat\w*|make|makes|making|open\w*)\s+(?:a\s+|an\s+|new\s+)?(pipe|socket)s?\b",
                         it.text):
        add(m.group(1) or m.group(2))
    # ... and when its time is asked for: "write latency", "how long open takes"
    for m in re.finditer(r"\b([a-z_][a-z0-9_]*)\s+(?:latenc(?:y|ies)|durations?|call times?)\b"
                         r"|\bhow long (?:does |do |did )?(?:each |an? |the )?([a-z_][a-z0-9_]*)\s+"
                         r"(?:calls?\s+)?takes?\b", it.text):
        if (m.group(1) or m.group(2)) in MEANS_SYSCALLS:
            add(m.group(1) or m.group(2))
    return found


def functions(it: Intent, catalog: Catalog) -> list[tuple[str, str]]:
    """(library, function) pairs the intent names: "malloc()", "SSL_write calls", "getaddrinfo in libc"."""
    from ..kernel.uprobes import function_symbols

    if not catalog.features.uprobes:
        return []
    libs = [it.library] if it.library else []
    libs += [lib for lib in ("libc", "libssl", "libcrypto", "bash") if lib not in libs]
    wanted = list(dict.fromkeys(it.explicit_calls + it.names + [w for w in it.words if w in KNOWN_FUNCTIONS]))
    out: list[tuple[str, str]] = []
    raw_words = {w: w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", it.raw)}
    for name in wanted:
        original = next((w for w in raw_words if w.lower() == name), name)
        if ordinary_word(name) and name not in KNOWN_FUNCTIONS:
            continue
        for lib in libs:
            path = catalog.uprobe_path(lib)
            if path and original in function_symbols(path):
                out.append((lib, original))
                break
    return out

def tracepoints(it: Intent, catalog: Catalog) -> list[Tracepoint]:
    out: list[Tracepoint] = []
    cats = catalog.tracepoints.categories()
    for w in it.words:
        cat, _, name = w.partition(":")
        if name and cat in cats and name in cats[cat]:
            tp = catalog.tracepoints.get(cat, name)
        elif not w.startswith("sys_") and ("_" in w or (len(w) >= 5 and not ordinary_word(w)
                                                        and catalog.syscall_tracepoint(w) is None)):
            tp = next(
                (catalog.tracepoints.get(c, w) for c, ns in cats.items() if w in ns and c != "syscalls"), None
            )
        else:
            tp = None
        if tp is not None and tp not in out:
            out.append(tp)
    return out
