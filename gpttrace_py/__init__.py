"""gpttrace: plain-language tracing questions in, real eBPF programs and their events out.

The data flow is the package layout: ``planning`` (intent → spec) → ``spec`` (the contract) →
``kernel`` (what this machine offers) → ``render`` (spec → bpftrace/BCC text) → ``run`` (load, attach,
stream, stop) → ``explain`` (teach the program).
"""

__version__ = "0.1.0"
