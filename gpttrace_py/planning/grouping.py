"""Map keys for the groupings a request names that are no probe field: by process, pid, thread, CPU, user,
stack, syscall. The one table, read by the offline planner, the catalog's programs and chat refinements."""

from __future__ import annotations

from typing import Any

from .intent import Intent

GROUP_KEYS: dict[str, list[dict[str, Any]]] = {
    "comm": [{"expr": "comm", "label": "COMM"}],
    "pid": [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"}],
    "tid": [{"expr": "tid", "label": "TID"}, {"expr": "comm", "label": "COMM"}],
    "cpu": [{"expr": "cpu", "label": "CPU"}],
    "uid": [{"expr": "uid", "label": "UID"}],
    "stack": [{"expr": "kstack", "label": "KSTACK"}],
    "ustack": [{"expr": "ustack", "label": "USTACK"}],
    "syscall": [{"expr": "probe", "label": "PROBE"}],
}


def group_keys(it: Intent) -> list[dict[str, Any]]:
    """Map keys for the groupings the question names that are no probe field: by process, pid, cpu... Not by
    syscall: a new request's program says which call by the syscall's number (the examples' args.id), not by
    the probe that fired, which only a chat refinement of a program of several probes keys by."""
    return [k for g in it.group_by if g in GROUP_KEYS and g != "syscall" for k in GROUP_KEYS[g]]
