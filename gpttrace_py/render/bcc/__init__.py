"""Render a ProgramSpec as a standalone BCC program: C for the kernel, Python around it.

The program is what a person would write with BCC by hand: a C text with one function per probe
(``TRACEPOINT_PROBE``-style typed tracepoint arguments, ``struct pt_regs`` for uprobes/kprobes,
``struct xdp_md`` / ``struct __sk_buff`` for packets), a ``struct event`` sent through a ring buffer (a
perf buffer on kernels before 5.8), one map per aggregate, and Python that loads every function (the
verifier check), attaches, prints events, and prints the aggregates at the end and every ``interval_s``.

With ``--records`` the program writes bpftrace-compatible JSON records (what ``bpftrace -f json``
prints), so gpttrace formats its output with the same Printer as bpftrace's; without it, it prints text
like the classic BCC tools.

Expressions are compiled from their parsed tree only (see ``spec.expr``); every other value reaches the
program through ``escape`` (identifiers, integers, string literals valid in C and Python, comments).

The modules, in the order a program is built: ``program`` (the entry point, ``render``) → ``builder`` (one
program's pieces) → ``probes`` (a C function per probe), ``cgen`` (expressions → C), ``slots`` (struct members and
how Python shows them), ``aggregates``, ``packets``; ``ctext`` and ``btf`` hold the limits and small helpers.
"""
