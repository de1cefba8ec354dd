"""What the LLM planner sends: the spec's schema and its documentation, this machine's facts, and per request
the intent, candidate probes from the live catalog, the closest corpus examples and the offline planner's guess.

Templates live in ``prompts/*.j2``. Every request is measured (the JSON body the SDK posts) and the context
shrinks step by step (fewer examples, shorter programs, fewer candidates and fields) until it fits
``REQUEST_BUDGET``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import GpttraceError
from ..kernel.catalog import Catalog
from ..spec import ProgramSpec
from ..spec import expr as E
from ..spec.kinds import SPEC_KINDS
from ..spec.model import ProbeRef, probe_text_pattern
from .base import PlanContext

REQUEST_BUDGET = 16_000  # bytes of JSON request body, below 16 KiB
SCHEMA_NAME = "ProgramSpec"
HIDDEN_FIELDS = ("lesson",)  # tutorial bookkeeping of corpus entries, not for the model

# Context levels, richest first: (examples, program chars, candidates, fields per candidate, hint)
LEVELS: tuple[tuple[int, int, int, int, bool], ...] = (
    (3, 1400, 14, 12, True),
    (3, 700, 10, 10, True),
    (2, 500, 8, 8, True),
    (1, 300, 6, 8, True),
    (1, 0, 5, 6, True),
    (0, 0, 4, 6, True),
    (0, 0, 3, 4, False),
    (0, 0, 0, 0, False),
)


# -- the schema ---------------------------------------------------------------------------------------------
# What a reply looks like on the wire differs from ProgramSpec's JSON form in one place: a value → name table
# (``OutputField.names``) is a list of {"value": N, "name": "..."} pairs, because a map with free keys is
# something neither OpenAI's strict structured output nor a grammar-enforcing server can constrain.
# ``to_wire`` / ``from_wire`` convert; every spec the model is shown goes through ``spec_json`` (wire form).
MAX_NAMES = 64  # entries of one value → name table
MAX_END_KEY = 4  # parts of end_key (as many as start.key, which allows 4)
# JSON Schema keywords OpenAI's strict mode accepts; response_schema() uses no others.
STRICT_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "items", "enum", "const",
                             "anyOf", "$ref", "$defs", "pattern", "minItems", "maxItems", "minimum", "maximum",
                             "exclusiveMinimum", "exclusiveMaximum", "description"})


@lru_cache(maxsize=1)
def _model_schema() -> dict[str, Any]:
    """ProgramSpec's JSON schema as its wire form looks (probes are text matching a pattern, value names are
    pairs), without fields the model must not set. The system prompt documents the spec from it."""
    schema = copy.deepcopy(ProgramSpec.model_json_schema(mode="serialization"))
    for name in HIDDEN_FIELDS:
        schema["properties"].pop(name, None)
    defs = schema["$defs"]
    # Long bounded repetitions ({0,127}) become unbounded: the lengths are pydantic's to check, and a grammar
    # made from the pattern is 3.6 times smaller (44 → 12 kB of GBNF) and samples a quarter faster.
    pattern = re.sub(r"\{([01]),\d{3}\}", lambda m: "*" if m.group(1) == "0" else "+", probe_text_pattern())
    defs["ProbeRef"] = {"type": "string", "pattern": pattern}
    defs["ValueName"] = {"type": "object", "properties": {"value": {"type": "integer"},
                                                          "name": {"type": "string", "maxLength": 40}},
                         "required": ["value", "name"]}
    names = defs["OutputField"]["properties"]["names"]
    names["anyOf"] = [{"type": "array", "items": {"$ref": "#/$defs/ValueName"}, "maxItems": MAX_NAMES},
                      {"type": "null"}]
    names["description"] = 'number → name pairs for this value (e.g. TCP states, signals): [{"value": 1, "name": ' \
                           '"ESTABLISHED"}, ...]'
    for option in schema["properties"]["end_key"]["anyOf"]:
        if option.get("type") == "array":
            option["maxItems"] = MAX_END_KEY
    return schema


@lru_cache(maxsize=1)
def response_schema() -> dict[str, Any]:
    """The schema sent as ``response_format``, in the shape OpenAI's strict mode accepts: every object lists all
    its properties as required and allows no others (a field the spec may omit accepts null instead), only
    ``STRICT_KEYWORDS``; probe texts match a pattern and every array is bounded. String lengths and expression
    syntax are left to pydantic (strict mode has no length keywords); the field docs are in the system prompt."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("properties", "$defs"):  # names of fields and definitions, not keywords
                out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key in STRICT_KEYWORDS and key != "description":
                out[key] = walk(value)
        if "properties" in out:
            optional = [k for k in out["properties"] if k not in out.get("required", [])]
            for name in optional:  # required now, so a field the spec may omit must accept null
                sub = out["properties"][name]
                if not _nullable(sub) and node["properties"][name].get("default", "") is None:
                    out["properties"][name] = {"anyOf": [sub, {"type": "null"}]}
            out["type"] = "object"
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    schema: dict[str, Any] = walk(_model_schema())
    return schema


def _nullable(node: dict[str, Any]) -> bool:
    return node.get("type") == "null" or any(v.get("type") == "null" for v in node.get("anyOf", []))


def response_format(mode: str = "json_schema") -> dict[str, Any] | None:
    """The ``response_format`` of a request in ``mode`` (json_schema, json_object, or text: none)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": response_schema(),
                                                       "strict": True}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def to_wire(data: Any) -> Any:
    """A spec's JSON form with value → name maps as pairs (what the model reads and writes)."""
    if isinstance(data, list):
        return [to_wire(v) for v in data]
    if not isinstance(data, dict):
        return data
    out = {k: to_wire(v) for k, v in data.items()}
    if isinstance(out.get("names"), dict):
        out["names"] = [{"value": int(k), "name": v} for k, v in out["names"].items()]
    return out


def from_wire(data: Any) -> Any:
    """The inverse of ``to_wire``; anything else is left for pydantic to judge."""
    if isinstance(data, list):
        return [from_wire(v) for v in data]
    if not isinstance(data, dict):
        return data
    out = {k: from_wire(v) for k, v in data.items()}
    pairs = out.get("names")
    if isinstance(pairs, list) and all(isinstance(p, dict) and set(p) == {"value", "name"} for p in pairs):
        out["names"] = {p["value"]: p["name"] for p in pairs}
    return out


def _type_text(node: dict[str, Any]) -> tuple[str, bool]:
    """A short type for a schema node, and whether null is allowed."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return ("probe" if name == "ProbeRef" else name), False
    if "anyOf" in node:
        parts = [v for v in node["anyOf"] if v.get("type") != "null"]
        nullable = len(parts) != len(node["anyOf"])
        return " | ".join(_type_text(p)[0] for p in parts), nullable
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"]), False
    t = node.get("type", "any")
    bounds = []
    if t == "array":
        inner, _ = _type_text(node.get("items", {}))
        lo, hi = node.get("minItems"), node.get("maxItems")
        if lo or hi:
            bounds.append(f"{lo or 0}..{hi}" if hi else f">= {lo}")
        text = f"list of {inner}"
    elif t == "object" and isinstance(node.get("additionalProperties"), dict):
        text = f"{{number: {_type_text(node['additionalProperties'])[0]}}}"
    else:
        text = {"integer": "int"}.get(t, t)
        if "minLength" in node and node["minLength"] > 1:
            bounds.append(f"{node['minLength']}..{node.get('maxLength', '')} chars")
        elif "maxLength" in node:
            bounds.append(f"<= {node['maxLength']} chars")
        for key, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<=")):
            if key in node:
                bounds.append(f"{sym} {node[key]}")
        if "pattern" in node:
            bounds.append(f"pattern {node['pattern']}")
    return (text + (f" ({', '.join(bounds)})" if bounds else "")), False


def _object_lines(name: str, node: dict[str, Any]) -> list[str]:
    doc = " ".join((node.get("description") or "").split())
    lines = [f"{name}{': ' + doc if doc else ''}"]
    required = set(node.get("required", []))
    for prop, sub in node.get("properties", {}).items():
        text, nullable = _type_text(sub)
        notes = []
        if prop in required:
            notes.append("required")
        elif "default" in sub and sub["default"] not in (None, "", [], {}):
            notes.append(f"default {json.dumps(sub['default'])}")
        elif nullable:
            notes.append("optional")
        desc = " ".join((sub.get("description") or "").split())
        tail = f"; {desc}" if desc else ""
        lines.append(f"  {prop}: {text}{' [' + ', '.join(notes) + ']' if notes else ''}{tail}")
    return lines


@lru_cache(maxsize=1)
def spec_reference() -> str:
    """The spec's fields documented from its pydantic JSON schema: names, types, bounds, defaults, descriptions."""
    schema = _model_schema()
    lines = _object_lines("ProgramSpec", schema)
    for name, node in schema.get("$defs", {}).items():
        if node.get("type") == "object":
            lines += _object_lines(name, node)
    lines.append("A spec must print fields or aggregate values (print or aggregates, or both).")
    return "\n".join(lines)


def _expr_doc() -> str:
    doc = E.__doc__ or ""
    body = doc.split("\n\n", 1)[1] if "\n\n" in doc else doc
    body = body.split("\nText is parsed", 1)[0]
    return "\n".join(ln.rstrip() for ln in body.strip("\n").splitlines())


def _probe_doc() -> str:
    return " ".join((ProbeRef.__doc__ or "").split())


# -- this machine ---------------------------------------------------------------------------------------------
def kernel_facts(catalog: Catalog) -> dict[str, str]:
    f = catalog.features

    def avail(ok: bool | None, missing: str, unknown: str = "not checked; avoid it") -> str:
        if ok is None:
            return unknown
        return "available" if ok else missing

    try:
        n_tp = str(len(catalog.tracepoints.all_names()))
    except OSError:
        n_tp = "?"
    return {
        "kernel": f.kernel,
        "bpftrace": f"v{f.bpftrace_version}" if f.bpftrace_version else (
            "installed" if f.bpftrace else "NOT installed"),
        "tracepoints": n_tp,
        "kprobes": avail(f.kprobes, "NOT available on this kernel (no CONFIG_KPROBES): do not use them"),
        "kfunc": avail(f.kfunc, "REFUSED by this kernel: do not use them"),
        "lsm": avail(f.lsm, "REFUSED by this kernel (BPF LSM off): do not use it"),
        "btf": "yes" if f.btf else "no",
        "uprobes": "available" if f.uprobes else "NOT available",
    }


# -- candidate probes -------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    probe: str
    fields: str


def _fields_text(catalog: Catalog, probe: str, limit: int) -> str:
    tp = catalog.tracepoint(probe)
    if tp is None:
        return ""
    parts = []
    for f in tp.user_fields[:limit]:
        kind = f.kind
        ctype = f.ctype.replace("const ", "")
        extra = {"str": " text", "ptr_str": " text", "ip4": " ipv4", "ip6": " ipv6"}.get(kind, "")
        parts.append(f"{f.name} {ctype}{'[' + str(f.array) + ']' if f.array else ''}{extra}")
    more = len(tp.user_fields) - limit
    return ", ".join(parts) + (f", +{more} more" if more > 0 else "") if parts else "(no fields)"


@lru_cache(maxsize=8192)
def _name_tokens(category: str, name: str) -> frozenset[str]:
    from .retrieval import stem

    return frozenset(stem(w) for w in re.split(r"[_:]+", f"{category}_{name}".lower())
                     if w and w not in ("sys", "enter", "exit"))


def candidate_probes(text: str, catalog: Catalog, related: list[str], limit: int = 20) -> list[str]:
    """Probes worth showing for a request: syscalls it names, probes of the hint and examples (``related``),
    tracepoints it names, then tracepoints whose names share words with it."""
    from . import intent as intent_mod
    from . import named
    from .catalog_programs import syscall_family
    from .retrieval import tokens

    out: list[str] = []

    def add(probe: str) -> None:
        if probe not in out and len(out) < limit:
            out.append(probe)

    def add_syscall(name: str) -> None:
        for phase in ("enter", "exit"):
            p = catalog.syscall_tracepoint(name, phase)
            if p is not None:
                add(p.text)

    it = intent_mod.parse(text)
    for name in named.syscalls(it, catalog):
        for member in syscall_family(name, catalog)[:3]:
            add_syscall(member)
    for probe in related:
        ref = _probe_ref(probe)
        if ref is not None and ref.kind == "tracepoint" and catalog.tracepoint(ref) is not None:
            add(ref.text)
    for tp in named.tracepoints(it, catalog):
        add(tp.probe)
    words = {w for w in tokens(text, expand=True) if len(w) >= 3}
    if words and catalog.tracepoints.available:
        scored: list[tuple[float, str]] = []
        for category, name in catalog.tracepoints.all_names():
            if category == "syscalls" and name.startswith("sys_exit_"):
                continue
            toks = _name_tokens(category, name)
            score = float(len(words & toks))
            score += 0.4 * sum(1 for w in words if len(w) >= 4 and any(t != w and t.startswith(w) for t in toks))
            if score > 0:
                scored.append((score, f"{category}:{name}"))
        scored.sort(key=lambda s: (-s[0], len(s[1]), s[1]))
        for _, full in scored[: limit * 2]:
            category, name = full.split(":", 1)
            if category == "syscalls":
                add_syscall(name.removeprefix("sys_enter_"))
            else:
                add(f"tracepoint:{full}")
    return out


def _probe_ref(text: str) -> ProbeRef | None:
    try:
        return ProbeRef.model_validate(text)
    except ValueError:
        return None


# -- examples and the offline guess -----------------------------------------------------------------------------
@dataclass
class ExampleText:
    title: str
    spec: str
    program: str


def spec_json(spec: ProgramSpec) -> str:
    """A spec as the model reads and writes it: compact JSON in wire form, defaults left out."""
    data = spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    for name in HIDDEN_FIELDS:
        data.pop(name, None)
    return json.dumps(to_wire(data), separators=(",", ":"))


def _program_text(program: str | None, limit: int) -> str:
    if not program or limit <= 0:
        return ""
    lines = [ln for ln in program.splitlines() if ln.strip() and not ln.lstrip().startswith(("//", "#!"))]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[:limit].rsplit("\n", 1)[0] + "\n..."


def examples_for(text: str, catalog: Catalog, n: int = 3) -> list[tuple[str, ProgramSpec, str | None]]:
    """The closest corpus entries: title, spec, and the bpftrace program (the entry's, or rendered here). An
    original that needs what this machine lacks (a needs_only entry) is no example to follow here."""
    from ..corpus import CorpusError, unmet_need
    from .retrieval import index

    try:
        hits = index().search(text, limit=n + 3)
    except CorpusError:  # a broken corpus entry must not stop the LLM planner
        return []
    hits = [h for h in hits if not (h.example.need and unmet_need(h.example.need, catalog))][:n]
    return [(h.example.title, h.example.spec, h.example.program or _render(h.example.spec, catalog)) for h in hits]


def _render(spec: ProgramSpec, catalog: Catalog) -> str | None:
    try:
        from ..render import bpftrace
        from . import edits

        return bpftrace.render(edits.fit_to_kernel(spec, catalog), catalog).text
    except (GpttraceError, ValueError):  # an example this kernel cannot express is still worth its spec (a
        return None  # RenderError is a ValueError)


def offline_hint(text: str, ctx: PlanContext) -> ProgramSpec | None:
    from .offline import OfflinePlanner

    try:
        return OfflinePlanner().plan(text, PlanContext(catalog=ctx.catalog, backend=ctx.backend))
    except GpttraceError:  # no guess is a fine answer
        return None


# -- requests -------------------------------------------------------------------------------------------------
@dataclass
class RequestContext:
    """Everything gathered once per intent; rendered at whatever level fits the budget."""

    intent: str
    candidates: list[str] = field(default_factory=list)
    examples: list[tuple[str, ProgramSpec, str | None]] = field(default_factory=list)
    hint: ProgramSpec | None = None


def gather(text: str, ctx: PlanContext, with_examples: bool = True, current: ProgramSpec | None = None,
           limit: int = 20) -> RequestContext:
    """The context of a request; ``current`` is the spec a refinement changes (its probes come first)."""
    examples = examples_for(text, ctx.catalog) if with_examples else []
    hint = offline_hint(text, ctx) if with_examples else None
    related = [p.text for p in (current.all_probes if current else [])]
    related += [p.text for p in (hint.all_probes if hint else [])]
    for _, spec, _ in examples:
        related += [p.text for p in spec.all_probes]
    return RequestContext(text, candidate_probes(text, ctx.catalog, related, limit), examples, hint)


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    from ..paths import data_dir

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("prompts"))), autoescape=False,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=False)


def render(template: str, **values: Any) -> str:
    text = _env().get_template(template).render(**values)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


_SYSTEM_CACHE: dict[int, str] = {}


def system_prompt(catalog: Catalog) -> str:
    key = id(catalog)
    if key not in _SYSTEM_CACHE:
        _SYSTEM_CACHE.clear()
        _SYSTEM_CACHE[key] = render("system.j2", spec_reference=spec_reference(), probe_doc=_probe_doc(),
                                    probe_kinds=", ".join(SPEC_KINDS), expr_doc=_expr_doc(),
                                    facts=kernel_facts(catalog))
    return _SYSTEM_CACHE[key]


def _candidates_at(rc: RequestContext, catalog: Catalog, n: int, n_fields: int) -> list[Candidate]:
    return [Candidate(p, _fields_text(catalog, p, n_fields)) for p in rc.candidates[:n]]


def user_prompt(rc: RequestContext, catalog: Catalog, level: tuple[int, int, int, int, bool]) -> str:
    n_ex, prog_chars, n_cand, n_fields, with_hint = level
    examples = [ExampleText(title, spec_json(spec), _program_text(program, prog_chars))
                for title, spec, program in rc.examples[:n_ex]]
    hint = spec_json(rc.hint) if (with_hint and rc.hint) else ""
    same = [i for i, e in enumerate(examples, 1) if e.spec == hint]
    if same:
        hint = f"(the spec of example {same[0]}, as it is)"
    return render("user.j2", intent=rc.intent, candidates=_candidates_at(rc, catalog, n_cand, n_fields),
                  examples=examples, hint=hint)


def refine_prompt(request: str, spec: ProgramSpec, rc: RequestContext, catalog: Catalog, history: list[str],
                  errors: list[str], level: tuple[int, int, int, int, bool]) -> str:
    _, _, n_cand, n_fields, _ = level
    return render("refine.j2", request=request, spec=spec_json(spec), history=history, errors=errors,
                  candidates=_candidates_at(rc, catalog, n_cand, n_fields))


def feedback_prompt(kind: str, *, message: str = "", log: str = "", backend: str = "", stage: str = "",
                    program: str = "", earlier: list[str] | None = None) -> str:
    return render("feedback.j2", kind=kind, message=message, log=log, backend=backend, stage=stage,
                  program=program, earlier=earlier or [])


def request_size(model: str, messages: list[dict[str, str]], fmt: dict[str, Any] | None) -> int:
    """Bytes of the JSON body the SDK posts (without the few keys it may add)."""
    body: dict[str, Any] = {"messages": messages, "model": model}
    if fmt is not None:
        body["response_format"] = fmt
    return len(json.dumps(body).encode())


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, keeping its start."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def clip(text: str, limit: int) -> str:
    """Text cut to ``limit`` characters, keeping its end (errors say the important part last) and its start."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return text[:head] + "\n[...]\n" + text[-(limit - head - 7):]
