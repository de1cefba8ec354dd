"""In-process measurements of gpttrace's own work (no tracer): run with the project's interpreter.

    .venv/bin/python bench/inproc.py cold INTENT       one fresh process: each start-up step, timed in order
    .venv/bin/python bench/inproc.py cold-plan INTENT  the first plan() of a fresh process, taken apart
    .venv/bin/python bench/inproc.py warm CASES.json N  OfflinePlanner().plan() (and render) per intent, warm
    .venv/bin/python bench/inproc.py render CASES.json DIR   each case's program, planned and rendered, into DIR

Both print one JSON object on stdout.

``cold`` repeats, step by step, what the first trace of a process pays before bpftrace starts: the imports,
the first plan (loading the corpus and the kernel facts on the way), the first render (Jinja). Steps are
timed in the order the pipeline meets them, so each number is the extra cost of that step given the ones
before. ``cold-plan`` splits the first plan into corpus YAML parsing, validation, the BM25 index, the kernel
facts and the planning itself.
"""

from __future__ import annotations

import json
import sys
import time

T = time.perf_counter


def _stepper(steps: dict[str, float]):
    """step(name, fn): run fn, note its time in ms under name, return what it returned."""

    def step(name, fn):
        t = T()
        out = fn()
        steps[name] = (T() - t) * 1000
        return out

    return step


def cold(intent: str) -> dict[str, float]:
    """What the first trace of a fresh process pays before bpftrace starts, in the pipeline's order."""
    steps: dict[str, float] = {}
    step = _stepper(steps)

    step("import click + gpttrace_py.cli", lambda: __import__("gpttrace_py.cli"))
    step("import pydantic", lambda: __import__("pydantic"))
    step("import gpttrace_py.spec (pydantic models)", lambda: __import__("gpttrace_py.spec"))
    step("import gpttrace_py.service.trace (rest)", lambda: __import__("gpttrace_py.service.trace"))
    step("import planning.offline", lambda: __import__("gpttrace_py.planning.offline"))
    from gpttrace_py import safety
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.planning import edits
    from gpttrace_py.planning.base import Conversation, PlanContext
    from gpttrace_py.planning.offline import OfflinePlanner
    from gpttrace_py.service import backends

    step("safety.preflight", lambda: safety.preflight("auto"))
    cat = Catalog()
    ctx = PlanContext(catalog=cat, backend="auto", conversation=Conversation())
    spec = step("first plan() (cold: corpus, index, kernel facts)", lambda: OfflinePlanner().plan(intent, ctx))
    step("second plan() (warm)", lambda: OfflinePlanner().plan(intent, ctx))
    spec = step("fit_to_kernel + catalog check", lambda: (edits.fit_to_kernel(spec, cat), cat.check_spec(spec))[0])
    backend = backends.choose_backend(spec, "auto", cat)
    program = step("first render (jinja import, templates compiled)", lambda: backends.render(spec, backend, cat))
    step("second render (warm)", lambda: backends.render(spec, backend, cat))
    step("safety.check of the text", lambda: safety.check(program.text, program.backend, False))
    return steps


def cold_plan(intent: str) -> dict[str, float]:
    """The first plan() of a fresh process taken apart (imports done first, not counted)."""
    import gpttrace_py.planning.offline
    import gpttrace_py.service.trace  # noqa: F401

    steps: dict[str, float] = {}
    step = _stepper(steps)

    yaml = step("import yaml", lambda: __import__("yaml"))
    from gpttrace_py import corpus

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    paths = sorted(corpus.corpus_dir().glob("*.yaml"))
    raw = step("corpus: read + parse YAML", lambda: [(p, yaml.load(p.read_text(), Loader=loader)) for p in paths])
    step("corpus: validate (pydantic)",
         lambda: [corpus.Example.model_validate({**d, "path": str(p)}) for p, d in raw])
    corpus.load.cache_clear()
    step("corpus.load() as the planner calls it (parsed-YAML cache)", corpus.load)
    from gpttrace_py.planning import retrieval

    step("BM25 index", retrieval.index)
    from gpttrace_py.kernel.catalog import Catalog

    cat = Catalog()
    step("catalog.features (detect: bpftrace --version, files)", lambda: cat.features)
    step("tracepoint listing (tracefs)", cat.tracepoints.categories)
    from gpttrace_py.planning.base import Conversation, PlanContext
    from gpttrace_py.planning.offline import OfflinePlanner
    from gpttrace_py.planning.plan import make_plan

    ctx = PlanContext(catalog=cat, backend="auto", conversation=Conversation())
    # make_plan: the request read (English, or Chinese through its lexicon), checked, planned, accounted for
    step("plan() with all of the above loaded", lambda: make_plan(OfflinePlanner(), intent, ctx))
    return steps


def warm(cases_path: str, reps: int) -> dict[str, object]:
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.planning import edits
    from gpttrace_py.planning.base import Conversation, PlanContext
    from gpttrace_py.planning.offline import OfflinePlanner
    from gpttrace_py.planning.plan import make_plan
    from gpttrace_py.service import backends

    with open(cases_path) as fh:
        intents = [c["intent"] for c in json.load(fh)]
    cat = Catalog()

    def one(intent):
        ctx = PlanContext(catalog=cat, backend="auto", conversation=Conversation())
        t = T()
        try:
            spec = make_plan(OfflinePlanner(), intent, ctx).spec
        except Exception:
            return (T() - t) * 1000, None
        plan_ms = (T() - t) * 1000
        t = T()
        try:
            spec = edits.fit_to_kernel(spec, cat)
            backends.render(spec, backends.choose_backend(spec, "auto", cat), cat)
        except Exception:
            return plan_ms, None
        return plan_ms, (T() - t) * 1000

    for intent in intents:  # warm-up: corpus, index, tracefs formats, templates
        one(intent)
    plan: list[float] = []
    render: list[float] = []
    per_intent: dict[str, list[float]] = {}
    for _ in range(reps):
        for intent in intents:
            p, r = one(intent)
            plan.append(p)
            per_intent.setdefault(intent, []).append(p)
            if r is not None:
                render.append(r)
    from gpttrace_py import corpus

    return {"plan_ms": plan, "render_ms": render, "corpus_entries": len(corpus.load()),
            "slowest": sorted(((max(v), k) for k, v in per_intent.items()), reverse=True)[:3]}


def render_all(cases_path: str, outdir: str) -> dict[str, str]:
    """Plan and render each case's program (no load) into OUTDIR/<id>.bt; returns {id: backend or error}."""
    import os

    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.planning import edits
    from gpttrace_py.planning.base import Conversation, PlanContext
    from gpttrace_py.planning.offline import OfflinePlanner
    from gpttrace_py.service import backends

    cat = Catalog()
    out: dict[str, str] = {}
    with open(cases_path) as fh:
        cases = json.load(fh)
    for c in cases:
        try:
            ctx = PlanContext(catalog=cat, backend="auto", conversation=Conversation())
            spec = edits.fit_to_kernel(OfflinePlanner().plan(c["intent"], ctx), cat)
            backend = backends.choose_backend(spec, "auto", cat)
            program = backends.render(spec, backend, cat)
        except Exception as exc:
            out[c["id"]] = f"error: {type(exc).__name__}"
            continue
        with open(os.path.join(outdir, c["id"] + program.suffix), "w") as fh:
            fh.write(program.text)
        out[c["id"]] = backend
    return out


if __name__ == "__main__":
    if sys.argv[1] == "cold":
        print(json.dumps(cold(sys.argv[2])))
    elif sys.argv[1] == "cold-plan":
        print(json.dumps(cold_plan(sys.argv[2])))
    elif sys.argv[1] == "render":
        print(json.dumps(render_all(sys.argv[2], sys.argv[3])))
    elif sys.argv[1] == "warm":
        print(json.dumps(warm(sys.argv[2], int(sys.argv[3]))))
    else:
        sys.exit(__doc__)
