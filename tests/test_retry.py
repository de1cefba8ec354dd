"""A program the kernel (or bpftrace) refuses goes back to the planner, and the corrected one runs."""

from __future__ import annotations

import io
import uuid

import pytest

from gpttrace_py.errors import GpttraceError
from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.service.options import TraceOptions
from gpttrace_py.service.trace import trace
from gpttrace_py.spec import ProgramSpec
from gpttrace_py.ui import UI

pytestmark = pytest.mark.kernel

BAD = {  # parses and passes the catalog, but bpftrace refuses it: a string compared with a number
    "title": "bad opens",
    "probes": ["tracepoint:syscalls:sys_enter_openat"],
    "filter": {"expr": "comm == 5"},
    "print": [{"expr": "comm"}, {"expr": "args.filename"}],
}
MISSING_FIELD = {  # the catalog catches this one before loading
    "title": "missing field",
    "probes": ["tracepoint:syscalls:sys_enter_openat"],
    "print": [{"expr": "comm"}, {"expr": "args.no_such_field"}],
}


def good(comm: str) -> dict:
    return {
        "title": "opens",
        "probes": ["tracepoint:syscalls:sys_enter_openat"],
        "filter": {"comm": comm},
        "print": [{"expr": "comm"}, {"expr": "args.filename", "label": "PATH"}],
    }


class ScriptedPlanner:
    """Answers from a list, and records the failures it was shown (like a model would get them)."""

    name = "scripted"

    def __init__(self, *specs: dict) -> None:
        self.specs = [ProgramSpec.model_validate(s) for s in specs]
        self.failures: list = []

    def plan(self, intent, ctx):
        return self.specs[0]

    def refine(self, request, spec, ctx):
        return spec

    def revise(self, intent, spec, failure, ctx):
        self.failures.append(failure)
        n = len(self.failures)
        return self.specs[n] if n < len(self.specs) else None


def ui_with_buffers() -> tuple[UI, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return UI(stdout=out, stderr=err, stdin=io.StringIO()), out, err


def test_load_error_is_fed_back_and_the_next_program_runs(tmp_path):
    f = tmp_path / f"retry-{uuid.uuid4().hex[:6]}"
    f.write_text("x")
    planner = ScriptedPlanner(BAD, MISSING_FIELD, good("cat"))
    ui, out, err = ui_with_buffers()
    result = trace("opens", planner, TraceOptions(yes=True, command=["cat", str(f)]), ui, Catalog())
    assert int(result.code) == 0
    assert str(f) in out.getvalue()
    assert len(planner.failures) == 2
    first, second = planner.failures
    assert first.stage in ("semantic", "parse") and first.line is not None  # bpftrace's own located error
    assert second.stage == "catalog" and "no_such_field" in second.message
    assert "attempt 1/4 failed" in err.getvalue() and "attempt 2/4 failed" in err.getvalue()


def test_retries_exhausted_lists_every_attempt():
    planner = ScriptedPlanner(BAD, BAD)
    ui, _, _err = ui_with_buffers()
    with pytest.raises(GpttraceError) as exc:
        trace("opens", planner, TraceOptions(yes=True, retries=1, command=["true"]), ui, Catalog())
    assert int(exc.value.code) == 1
    assert "2 attempt(s)" in exc.value.message
    assert exc.value.message.count("bpftrace") >= 2
