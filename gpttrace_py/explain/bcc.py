"""A scanner for BCC programs: the C text handed to ``BPF(text=...)`` (maps, functions, helpers, filters)
and the Python around it (attach calls, the output loop), read with ``ast``."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .glossary import Glossary
from .glossary import load as load_glossary
from .model import Access, Block, Filter, Probe, ProgramModel, PythonSide
from .source import Source, match_bracket, scan, skip_space, split_top, split_top_ranges, statement_end, statements

ATTACH_KINDS = {
    "attach_kprobe": "kprobe",
    "attach_kretprobe": "kretprobe",
    "attach_tracepoint": "tracepoint",
    "attach_raw_tracepoint": "rawtracepoint",
    "attach_uprobe": "uprobe",
    "attach_uretprobe": "uretprobe",
    "attach_perf_event": "perf_event",
    "attach_kfunc": "kfunc",
    "attach_kretfunc": "kretfunc",
    "attach_lsm": "lsm",
    "attach_xdp": "xdp",
    "attach_raw_socket": "socket_filter",
}
AUTO_PREFIXES = (
    ("kprobe__", "kprobe"),
    ("kretprobe__", "kretprobe"),
    ("tracepoint__", "tracepoint"),
    ("raw_tracepoint__", "rawtracepoint"),
    ("kfunc__", "kfunc"),
    ("kretfunc__", "kretfunc"),
    ("lsm__", "lsm"),
)
PROBE_MACROS = {
    "TRACEPOINT_PROBE": "tracepoint",
    "RAW_TRACEPOINT_PROBE": "rawtracepoint",
    "KFUNC_PROBE": "kfunc",
    "KRETFUNC_PROBE": "kretfunc",
    "LSM_PROBE": "lsm",
    "KMOD_RET": "kfunc",
}
# Python API names too common to count unless called on a BPF object or one of its maps.
GENERIC_PY = {
    "items",
    "keys",
    "values",
    "clear",
    "zero",
    "event",
    "sym",
    "ksym",
    "walk",
    "cleanup",
    "Key",
    "Leaf",
    "load_func",
    "get_table",
    "call",
    "lookup",
    "update",
    "delete",
    "push",
    "pop",
    "peek",
}
CONTEXTS = {
    "pt_regs": "the saved CPU registers of the probed code (kprobe/uprobe): PT_REGS_PARM1(ctx).. read the arguments",
    "xdp_md": "the packet as XDP sees it: data and data_end bound the bytes that may be read",
    "__sk_buff": "the kernel's socket buffer (packet) with its metadata",
    "bpf_perf_event_data": "the perf sample, with the registers of the interrupted code",
    "bpf_raw_tracepoint_args": "the raw tracepoint's arguments, ctx->args[0..]",
}
POLLS = {
    "perf_buffer_poll",
    "ring_buffer_poll",
    "ring_buffer_consume",
    "trace_print",
    "trace_fields",
    "trace_readline",
    "kprobe_poll",
}
MAP_OPS = {
    "increment": "increment",
    "atomic_increment": "increment",
    "lookup": "lookup",
    "lookup_or_init": "lookup",
    "lookup_or_try_init": "lookup",
    "update": "update",
    "insert": "update",
    "delete": "delete",
    "perf_submit": "submit",
    "perf_submit_skb": "submit",
    "ringbuf_output": "submit",
    "ringbuf_reserve": "reserve",
    "ringbuf_submit": "submit",
    "ringbuf_discard": "discard",
    "get_stackid": "stackid",
    "push": "update",
    "pop": "lookup",
    "peek": "lookup",
    "call": "call",
    "redirect_map": "lookup",
    "perf_read": "lookup",
    "perf_counter_value": "lookup",
}


def looks_like_bcc(text: str) -> bool:
    """BCC's Python or C, or the C of a libbpf program (SEC() sections, vmlinux.h or bpf/bpf_helpers.h)."""
    return bool(
        re.search(r"(?m)^\s*(from\s+bcc\s+import|import\s+bcc\b)|\bBPF\s*\(\s*(text|src_file)\s*=", text)
        or looks_like_libbpf(text)
        or re.search(
            r"\b(TRACEPOINT_PROBE|BPF_HASH|BPF_PERF_OUTPUT|BPF_RINGBUF_OUTPUT|BPF_HISTOGRAM|"
            r"BPF_ARRAY|BPF_STACK_TRACE)\s*\(",
            text,
        )
        or re.search(r"(?m)^#!.*python", text)
    )


def looks_like_libbpf(text: str) -> bool:
    return bool(re.search(r'(?m)^\s*#\s*include\s*[<"](vmlinux\.h|bpf/bpf_helpers\.h)[>"]|^\s*SEC\s*\(\s*"', text))


# libbpf section names (SEC("...")) → probe kind; the rest of the name says where
LIBBPF_SECTIONS = {"tracepoint": "tracepoint", "tp": "tracepoint", "raw_tracepoint": "rawtracepoint",
                   "raw_tp": "rawtracepoint", "kprobe": "kprobe", "kretprobe": "kretprobe", "uprobe": "uprobe",
                   "uretprobe": "uretprobe", "fentry": "kfunc", "fexit": "kretfunc", "lsm": "lsm", "xdp": "xdp",
                   "tc": "tc", "usdt": "usdt", "perf_event": "software"}
LIBBPF_MAP_TYPES = {"HASH": "hash", "ARRAY": "array", "PERCPU_ARRAY": "percpu_array", "PERCPU_HASH": "percpu_hash",
                    "LRU_HASH": "lru_hash", "RINGBUF": "ringbuf", "PERF_EVENT_ARRAY": "perf_event_array",
                    "STACK_TRACE": "stack_trace", "LPM_TRIE": "lpm_trie", "QUEUE": "queue", "PROG_ARRAY": "prog_array"}


# -- the Python side -------------------------------------------------------------------------------
@dataclass
class _Fragment:
    text: str
    line: int  # file line of the text's first line
    note: str | None = None


@dataclass
class _Attach:
    method: str
    line: int
    kw: dict[str, str]  # resolved argument text
    pos: list[str]
    source: str


@dataclass
class _Py:
    fragments: list[_Fragment] = field(default_factory=list)
    side: PythonSide = field(default_factory=PythonSide)
    attaches: list[_Attach] = field(default_factory=list)
    api: list[tuple[str, int, str | None]] = field(default_factory=list)  # (method, line, receiver kind)
    unknown_api: list[tuple[str, int]] = field(default_factory=list)
    loaded: dict[str, tuple[str, str]] = field(default_factory=dict)  # variable -> (function, program type)
    tc: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # (line, direction, dev, fn var)
    usdt_targets: dict[str, str] = field(default_factory=dict)
    maybe_tables: list[tuple[int, str, str]] = field(default_factory=list)


class _PyReader:
    def __init__(self, text: str, glossary: Glossary) -> None:
        self.text = text
        self.g = glossary
        self.out = _Py()
        self.lines = text.split("\n")
        self.line_starts = [0]
        for ln in self.lines:
            self.line_starts.append(self.line_starts[-1] + len(ln) + 1)
        self.replaced: set[str] = set()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.tree = ast.parse(text)
        self.strings: dict[str, list[ast.expr]] = {}  # name -> every value assigned to it
        self.tables: dict[str, str] = {}  # variable -> map name
        self.bpf: set[str] = set()
        self.usdt: set[str] = set()
        self.maybe_tables: list[tuple[int, str, str]] = []

    def seg(self, node: ast.AST) -> str:
        """The source text of a node (ast.get_source_segment splits the file on every call: too slow)."""
        try:
            start = self.line_starts[node.lineno - 1] + _char_offset(self.lines[node.lineno - 1], node.col_offset)
            end = self.line_starts[node.end_lineno - 1] + _char_offset(
                self.lines[node.end_lineno - 1], node.end_col_offset
            )
        except (AttributeError, IndexError, TypeError):
            return ""
        return self.text[start:end].strip()

    def run(self) -> _Py:
        self._index_functions()
        for node in ast.walk(self.tree):  # the BPF objects first: tables are subscripts of them
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _call_name(node.value) == "BPF":
                self.bpf.update(t.id for t in node.targets if isinstance(t, ast.Name))
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    self._bind(t, node.value)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                self._bind(node.target, node.value)
        self._find_text()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, (ast.While, ast.For)):
                self.out.side.loops = True
            elif isinstance(node, ast.Attribute) and node.attr in POLLS and isinstance(node.ctx, ast.Load):
                if not any(ln == node.lineno and m == node.attr for ln, m in self.out.side.polls):
                    self.out.side.polls.append((node.lineno, node.attr))
                    self.out.api.append((node.attr, node.lineno, "bpf"))
            elif (
                isinstance(node, ast.ExceptHandler)
                and node.type is not None
                and "KeyboardInterrupt" in self.seg(node.type)
            ):
                self.out.side.handles_interrupt = True
        self.out.side.bpf_names = sorted(self.bpf)
        self.out.maybe_tables = self.maybe_tables
        return self.out

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.strings.setdefault(target.id, []).append(value)
            if isinstance(value, ast.Call):
                fn = _call_name(value)
                if fn == "BPF":
                    self.bpf.add(target.id)
                elif fn == "USDT":
                    self.usdt.add(target.id)
                    for kw in value.keywords:
                        if kw.arg == "path":
                            self.out.usdt_targets[target.id] = self._value(kw.value)
                        elif kw.arg == "pid" and target.id not in self.out.usdt_targets:
                            self.out.usdt_targets[target.id] = f"the process with pid {self._value(kw.value)}"
                elif fn in ("get_table",) or (fn == "load_func"):
                    pass
            if (
                isinstance(value, ast.Subscript)
                and isinstance(value.value, ast.Name)
                and (value.value.id in self.bpf or value.value.id in ("b", "bpf"))
            ):
                key = _const_str(value.slice)
                if key is not None:
                    self.tables[target.id] = key
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
                if value.func.attr == "get_table" and value.args:
                    key = _const_str(value.args[0])
                    if key is not None:
                        self.tables[target.id] = key
                if value.func.attr == "load_func" and value.args:
                    fname = _const_str(value.args[0]) or self.seg(value.args[0])
                    ptype = self.seg(value.args[1]) if len(value.args) > 1 else ""
                    self.out.loaded[target.id] = (fname, ptype)

    # -- the C text ----------------------------------------------------------------------------------
    def _find_text(self) -> None:
        calls = [n for n in ast.walk(self.tree) if isinstance(n, ast.Call) and _call_name(n) == "BPF"]
        exprs: list[ast.expr] = []
        for c in calls:
            for kw in c.keywords:
                if kw.arg == "text":
                    exprs.append(kw.value)
                elif kw.arg == "src_file":
                    self.out.side.source_note = f"the C text is read from the file {self.seg(kw.value)}"
            if c.args:
                exprs.append(c.args[0])
        seen: set[int] = set()
        for e in exprs:
            self._collect(e, seen, depth=0)
        followed = bool(self.out.fragments)
        # String constants that look like BPF C but that BPF(text=...) does not lead to directly (text put
        # together in functions, templates filled with %): part of the program too.
        for node in ast.walk(self.tree):
            value = _text_const(node)
            if value is not None and _looks_like_c(value) and not any(f.text == value for f in self.out.fragments):
                self._fragment(node, "assembled by the Python code" if followed else None)
        self.out.fragments.sort(key=lambda f: f.line)

    def _collect(self, e: ast.expr, seen: set[int], depth: int) -> None:
        if depth > 12 or id(e) in seen:
            return
        seen.add(id(e))
        if _text_const(e) is not None:
            self._fragment(e, None)
        elif isinstance(e, ast.JoinedStr):
            for v in e.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    self._fragment(v, None, line=e.lineno)
        elif isinstance(e, ast.Name):
            for v in self.strings.get(e.id, []):
                self._collect(v, seen, depth + 1)
            self._replacements(e.id)
        elif isinstance(e, ast.BinOp):
            self._collect(e.left, seen, depth + 1)
            if isinstance(e.op, ast.Add):
                self._collect(e.right, seen, depth + 1)
        elif isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute):
            if e.func.attr in ("replace", "format", "strip", "encode", "lstrip", "rstrip"):
                self._collect(e.func.value, seen, depth + 1)
            if e.func.attr == "replace" and len(e.args) >= 2:
                self._replacement(e)
            if e.func.attr == "read":
                self.out.side.source_note = f"the C text is read from a file ({self.seg(e)})"
        elif isinstance(e, ast.IfExp):
            self._collect(e.body, seen, depth + 1)
            self._collect(e.orelse, seen, depth + 1)

    def _replacements(self, name: str) -> None:
        if name in self.replaced:
            return
        self.replaced.add(name)
        for v in self.strings.get(name, []):
            if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "replace":
                self._replacement(v)

    def _replacement(self, call: ast.Call) -> None:
        placeholder = _const_str(call.args[0])
        if placeholder is None:
            return
        repl = call.args[1]
        shown = self.seg(repl)
        entry = (call.lineno, placeholder, shown)
        if entry not in self.out.side.placeholders:
            self.out.side.placeholders.append(entry)
            # Code put in by Python is part of the program too.
            for node in self._string_nodes(repl):
                if re.search(r"[;(]", _text_const(node) or ""):
                    self._fragment(node, f"inserted at {placeholder}")

    def _string_nodes(self, e: ast.expr, depth: int = 0) -> list[ast.Constant]:
        if depth > 6:
            return []
        if _text_const(e) is not None:
            return [e]
        if isinstance(e, ast.BinOp):
            return self._string_nodes(e.left, depth + 1) + self._string_nodes(e.right, depth + 1)
        if isinstance(e, ast.JoinedStr):
            return [v for v in e.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        if isinstance(e, ast.Name):
            out: list[ast.Constant] = []
            for v in self.strings.get(e.id, []):
                out += self._string_nodes(v, depth + 1)
            return out
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute):
            return self._string_nodes(e.func.value, depth + 1)
        return []

    def _fragment(self, node: ast.Constant, note: str | None, line: int | None = None) -> None:
        text = _text_const(node) or ""
        if any(f.text == text and f.line == (line or node.lineno) for f in self.out.fragments):
            return
        self.out.fragments.append(_Fragment(text, line or node.lineno, note))

    # -- calls ----------------------------------------------------------------------------------------
    def _value(self, e: ast.expr | None, env: dict[str, str] | None = None, depth: int = 0) -> str:
        """A readable value for an argument: the constant, a constant a name holds, what the caller passed
        for a parameter (``env``), or the source text."""
        if e is None:
            return ""
        if env and isinstance(e, ast.Name) and e.id in env:
            return env[e.id]
        s = _const_str(e)
        if s is not None:
            return s
        if isinstance(e, ast.Constant):
            return repr(e.value)
        if isinstance(e, ast.Name) and depth < 4:
            assigned = self.strings.get(e.id, [])
            vals = {
                self._value(v, env, depth + 1)
                for v in assigned
                if isinstance(v, (ast.Constant, ast.BinOp, ast.Call, ast.Name))
            }
            vals = {v for v in vals if v and not any(ch in v for ch in "()[] ")}
            if len(vals) == 1:
                return vals.pop()
        if (
            isinstance(e, ast.Call)
            and isinstance(e.func, ast.Attribute)
            and e.func.attr in ("get_syscall_fnname", "get_syscall_fnname_or_none")
            and e.args
        ):
            name = _const_str(e.args[0])
            if name is not None:
                return f"__x64_sys_{name}"
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr in ("encode", "decode"):
            if (
                e.func.attr == "decode"
                and isinstance(e.func.value, ast.Call)
                and _call_name(e.func.value) == "get_syscall_prefix"
            ):
                return "__x64_sys_"
            return self._value(e.func.value, env, depth + 1)
        if isinstance(e, ast.Call) and _call_name(e) == "get_syscall_prefix":
            return "__x64_sys_"
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Add):
            left, right = self._value(e.left, env, depth + 1), self._value(e.right, env, depth + 1)
            if left and right and not any(ch in left + right for ch in "()[] "):
                return left + right
        return self.seg(e)

    # -- what a function's parameters were called with ---------------------------------------------
    def _index_functions(self) -> None:
        self.parents: dict[int, ast.FunctionDef] = {}
        self.funcs: dict[str, ast.FunctionDef] = {}
        self.callsites: dict[str, list[ast.Call]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.funcs[node.name] = node
                for inner in ast.walk(node):
                    if inner is not node:
                        self.parents[id(inner)] = node
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                self.callsites.setdefault(node.func.id, []).append(node)

    def _enclosing(self, node: ast.AST):
        return self.parents.get(id(node))

    def _envs(self, node: ast.AST, depth: int = 0) -> list[dict[str, str]]:
        """One binding of the enclosing function's parameters per place it is called from."""
        fd = self._enclosing(node)
        if fd is None or depth > 3:
            return [{}]
        sites = self.callsites.get(fd.name, [])
        if not sites:
            return [{}]
        params = [a.arg for a in fd.args.args]
        envs = []
        for site in sites:
            outer = self._envs(site, depth + 1)[0]
            env: dict[str, str] = {}
            for i, a in enumerate(site.args):
                if i < len(params):
                    env[params[i]] = self._value(a, outer)
            for k in site.keywords:
                if k.arg:
                    env[k.arg] = self._value(k.value, outer)
            if env not in envs:
                envs.append(env)
        return envs or [{}]

    def _loaded_name(self, fn: ast.AST, env: dict[str, str]) -> str | None:
        """The C function name behind ``fn = b.load_func(NAME, TYPE)``."""
        if not isinstance(fn, ast.Name):
            return None
        for value in self.strings.get(fn.id, []):
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr == "load_func"
                and value.args
            ):
                return self._value(value.args[0], env)
        return None

    def _receiver(self, func: ast.Attribute) -> tuple[str | None, str | None]:
        """What a method is called on: ('bpf', None), ('table', map name), ('usdt', None) or (None, None)."""
        v = func.value
        if isinstance(v, ast.Name):
            if v.id in self.bpf or v.id == "BPF":
                return "bpf", None
            if v.id in self.tables:
                return "table", self.tables[v.id]
            if v.id in self.usdt:
                return "usdt", None
        if isinstance(v, ast.Name) and v.id in ("b", "bpf", "bpf_obj"):
            return "bpf", None
        if isinstance(v, ast.Subscript) and isinstance(v.value, ast.Name):
            key = _const_str(v.slice)
            if v.value.id in self.bpf or v.value.id in ("b", "bpf"):
                return "table", key or self.seg(v)
            if key is not None:
                return "table?", key  # kept when the C text declares a map of that name
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "get_table" and v.args:
            return "table", _const_str(v.args[0]) or self.seg(v.args[0])
        return None, None

    def _call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if name in ("BPF", "USDT"):
            self.out.api.append((name, node.lineno, None))
            return
        if name in ("sleep",):
            self.out.side.sleeps = True
        if not isinstance(node.func, ast.Attribute):
            return
        attr = node.func.attr
        kind, table = self._receiver(node.func)
        entry = self.g.python_api(attr)
        if attr in ATTACH_KINDS or attr == "enable_probe":
            for env in self._envs(node):
                kw = {k.arg: self._value(k.value, env) for k in node.keywords if k.arg}
                pos = [self._value(a, env) for a in node.args]
                fn = None
                if attr == "attach_xdp":
                    fn = (
                        node.args[1]
                        if len(node.args) > 1
                        else next((k.value for k in node.keywords if k.arg == "fn"), None)
                    )
                elif attr == "attach_raw_socket" and node.args:
                    fn = node.args[0]
                if fn is not None:
                    fname = self._loaded_name(fn, env)
                    if fname:
                        kw.setdefault("fn_name", fname)
                if attr == "enable_probe" and isinstance(node.func.value, ast.Name):
                    kw.setdefault("_target", self.out.usdt_targets.get(node.func.value.id, "the traced program"))
                a = _Attach(attr, node.lineno, kw, pos, self.seg(node))
                if not any(x.kw == a.kw and x.pos == a.pos and x.method == a.method for x in self.out.attaches):
                    self.out.attaches.append(a)
        if attr == "tc" and node.args and _const_str(node.args[0]) in ("add-filter", "replace-filter"):
            fd = self._enclosing(node)
            for env in self._envs(node):
                parent = next((self._value(k.value, env) for k in node.keywords if k.arg == "parent"), "")
                direction = env.get("direction") or ("egress" if "fff3" in parent.lower() else "ingress")
                fname = None
                for k in node.keywords:
                    if k.arg in ("fd", "name") and isinstance(k.value, ast.Attribute):
                        fname = self._loaded_name(k.value.value, env) or fname
                dev = None
                for n in ast.walk(fd) if fd is not None else ():
                    if isinstance(n, ast.Call) and _call_name(n) == "link_lookup":
                        dev = next((self._value(k.value, env) for k in n.keywords if k.arg == "ifname"), None)
                dev = (
                    dev
                    or env.get("dev")
                    or env.get("device")
                    or env.get("ifname")
                    or (self.seg(node.args[2]) if len(node.args) > 2 else "?")
                )
                entry_tc = (node.lineno, direction, dev, fname)
                if entry_tc not in self.out.tc:
                    self.out.tc.append(entry_tc)
        if entry is None:
            if kind in ("bpf", "table") and not attr.startswith("__"):
                self.out.unknown_api.append((attr, node.lineno))
            return
        if attr in GENERIC_PY and kind is None:
            return
        if kind == "table?":
            self.maybe_tables.append((node.lineno, table or "", attr))
            kind = "table"
        self.out.api.append((attr, node.lineno, kind))
        side = self.out.side
        if attr in ("open_perf_buffer", "open_ring_buffer") and node.args:
            cb = node.args[0]
            cb_name = cb.id if isinstance(cb, ast.Name) else self.seg(cb)
            side.callbacks[cb_name] = table or "?"
            side.callback_prints[cb_name] = self._function_prints(cb_name)
        elif attr in POLLS:
            if not any(ln == node.lineno and m == attr for ln, m in side.polls):
                side.polls.append((node.lineno, attr))
        elif kind == "table" and table:
            side.table_reads.append((node.lineno, table, attr))

    def _function_prints(self, name: str) -> bool:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return any(
                    isinstance(n, ast.Call)
                    and (_call_name(n) or "") in ("print", "printb", "write", "line", "printf", "echo", "record")
                    for n in ast.walk(node)
                )
        return False


def _call_name(node: ast.Call) -> str | None:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return None


def _char_offset(line: str, byte_offset: int | None) -> int:
    """ast columns count UTF-8 bytes; string indexes count characters."""
    if byte_offset is None:
        raise TypeError
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", "replace"))


def _text_const(node: ast.AST) -> str | None:
    """The text of a str or bytes constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return node.value.decode("utf-8", "replace") if isinstance(node.value, bytes) else node.value
    return None


def _const_str(e: ast.AST | None) -> str | None:
    if isinstance(e, ast.Constant) and isinstance(e.value, (str, bytes)):
        return e.value.decode(errors="replace") if isinstance(e.value, bytes) else e.value
    return None


def _looks_like_c(s: str) -> bool:
    return bool(re.search(r"#include|\bBPF_[A-Z_]+\s*\(|\bbpf_\w+\s*\(|TRACEPOINT_PROBE|struct pt_regs", s))


# -- the C side ------------------------------------------------------------------------------------
class _CScanner:
    def __init__(self, src: Source, model: ProgramModel, glossary: Glossary) -> None:
        self.src = src
        self.m = model
        self.g = glossary
        self.keywords = glossary.words("c_keywords")
        self.functions: dict[str, int] = {}  # name -> block index

    def run(self) -> None:
        src, m = self.src, self.m
        m.take_directives(src.preprocessor)
        code = src.code
        i, n, hstart = 0, len(code), 0
        pending: list[tuple[int, int, int]] = []  # function blocks: (header start, '{', '}')
        residual: list[tuple[int, int]] = []  # code outside any function (pieces the Python puts together)
        while i < n:
            ch = code[i]
            if ch == ";":
                if not self.top_statement(hstart, i) and _is_statement(code[hstart:i]):
                    residual.append((hstart, i + 1))
                hstart = i + 1
            elif ch == "{":
                end = match_bracket(code, i)
                header = code[hstart:i]
                hm = re.search(r"(\w+)\s*\(", header)
                name = self.function_name(header) if header.rstrip().endswith(")") else None
                if (
                    name
                    and hm
                    and name not in self.keywords
                    and not re.search(r"=\s*$|\bstruct\s+\w+\s*\w*\s*=", header)
                ):
                    pending.append((hstart, i, end))
                elif re.match(r"\s*struct\s*$", header) and re.match(r'\s*\w+\s+SEC\s*\(\s*"\.maps"',
                                                                       src.display[end + 1 : end + 80]):
                    self.libbpf_map(i, end)
                elif re.match(r"\s*(typedef\s+)?(struct|union|enum)\b", header):
                    self.struct(header, i, end)
                    # skip the declarator after the closing brace: "} name;"
                    semi = code.find(";", end)
                    if (
                        semi != -1
                        and not code[end + 1 : semi].strip().startswith(("{",))
                        and "{" not in code[end + 1 : semi]
                    ):
                        end = semi
                elif not re.search(r"=\s*$", header):
                    residual.append((hstart, end + 1))
                i, hstart = end + 1, end + 1
                continue
            i += 1
        if code[hstart:].strip() and _is_statement(code[hstart:]):
            residual.append((hstart, n))
        for hs, lb, _rb in pending:  # functions first, so calls between them are recognized
            name = self.function_name(code[hs:lb])
            if name:
                self.functions[name] = -1
        for hs, lb, rb in pending:
            self.function(hs, lb, rb)
        if residual:
            index = len(m.blocks)
            blk = Block(
                label="C code outside the functions (pieces the Python code splices in)",
                start_line=src.line(residual[0][0]),
                end_line=src.line(residual[-1][1] - 1),
                function="__outside__",
            )
            m.blocks.append(blk)
            for a, b in residual:
                self.body(a, b, index)
                blk.statements += statements(src, a, b)

    def top_statement(self, a: int, b: int) -> bool:
        """Map declarations in a top-level statement; True when it was one."""
        code = self.src.code
        found = False
        for mm in re.finditer(r"\b(BPF_[A-Z_]+)\s*\(", code[a:b]):
            found = True
            macro = mm.group(1)
            entry = self.g.bcc(macro)
            if not entry or not entry.get("map"):
                if macro not in self.m.defines:
                    self.m.use(macro, "unknown" if not entry else "macro", self.src.line(a + mm.start()))
                continue
            po = a + mm.end() - 1
            pc = match_bracket(code, po)
            args = [self.src.show(x, y) for x, y in split_top_ranges(code, po + 1, pc)]
            self.declare(macro, entry.get("map"), args, self.src.line(a + mm.start()))
        return found

    def declare(self, macro: str, map_type: str, args: list[str], line: int) -> None:
        self.m.use(macro, "macro", line)
        if macro.startswith(("BPF_TABLE", "BPF_F_TABLE")) and len(args) >= 4:
            name, key, leaf = args[3], args[1], args[2]
            size = args[4] if len(args) > 4 else None
            map_type = args[0].strip('"')
        elif args:
            name = args[0]
            key = leaf = size = None
            if macro in ("BPF_HASH", "BPF_LRU_HASH", "BPF_PERCPU_HASH", "BPF_HASH_OF_MAPS"):
                key = args[1] if len(args) > 1 else "u64"
                leaf = args[2] if len(args) > 2 else "u64"
                size = args[3] if len(args) > 3 else "10240"
            elif macro in ("BPF_ARRAY", "BPF_PERCPU_ARRAY"):
                key, leaf = "int", args[1] if len(args) > 1 else "u64"
                size = args[2] if len(args) > 2 else "10240"
            elif macro == "BPF_HISTOGRAM":
                key, leaf = (args[1] if len(args) > 1 else "int"), "u64"
                size = args[2] if len(args) > 2 else "64"
            elif macro == "BPF_STACK_TRACE":
                size = args[1] if len(args) > 1 else None
            elif macro == "BPF_RINGBUF_OUTPUT":
                size = f"{args[1]} pages" if len(args) > 1 else None
            elif macro in ("BPF_QUEUE", "BPF_STACK"):
                leaf = args[1] if len(args) > 1 else None
                size = args[2] if len(args) > 2 else None
            elif len(args) > 1:
                leaf = args[1]
        else:
            return
        info = self.m.map(name, line)
        info.macro, info.map_type, info.key_type, info.value_type, info.size = macro, map_type, key, leaf, size

    def libbpf_map(self, lb: int, rb: int) -> None:
        """A map as libbpf declares it:
        struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, K); ... } NAME SEC(".maps")."""
        body, after = self.src.display[lb + 1 : rb], self.src.display[rb + 1 : rb + 80]
        name = re.match(r"\s*(\w+)", after).group(1)  # type: ignore[union-attr]
        info = self.m.map(name, self.src.line(rb))
        kind = re.search(r"__uint\s*\(\s*type\s*,\s*BPF_MAP_TYPE_(\w+)\s*\)", body)
        info.map_type = LIBBPF_MAP_TYPES.get(kind.group(1), kind.group(1).lower()) if kind else None
        for field_name, attr in (("key", "key_type"), ("value", "value_type")):
            mm = re.search(rf"__type\s*\(\s*{field_name}\s*,\s*([^)]+?)\s*\)", body)
            if mm:
                setattr(info, attr, mm.group(1))
        size = re.search(r"__uint\s*\(\s*max_entries\s*,\s*([^)]+?)\s*\)", body)
        info.size = size.group(1) if size else None

    def libbpf_probe(self, header_start: int, label: str, index: int) -> None:
        """The probe a libbpf function is placed at by its SEC("kind/where") line."""
        sec = re.search(r'SEC\s*\(\s*"([^"]*)"\s*\)', self.src.display[header_start : header_start + 400])
        if not sec:
            return
        kind_word, _, where = sec.group(1).partition("/")
        kind = LIBBPF_SECTIONS.get(kind_word)
        if kind is None:
            return
        line = self.src.line(header_start)
        probe = Probe(label, kind, line, via=f'SEC("{sec.group(1)}"), attached by libbpf', block=index)
        if kind == "tracepoint" and where.count("/") == 1:
            probe.category, probe.name = where.split("/")
            probe.text = f"tracepoint:{probe.category}:{probe.name}"
        elif kind in ("uprobe", "uretprobe") and ":" in where:
            probe.target, _, probe.name = where.rpartition(":")
            probe.text = f"{kind}:{probe.target}:{probe.name}"
        elif kind == "software":
            probe.via = 'SEC("perf_event"): the loader opens the perf event and attaches it'
            probe.text = "perf_event"
        elif where:
            probe.name = where
            probe.text = f"{kind}:{where}"
        probe.handler = label
        self.m.blocks[index].probes.append(len(self.m.probes))
        self.m.probes.append(probe)

    def struct(self, header: str, lb: int, rb: int) -> None:
        name = " ".join(header.replace("typedef", "").split())
        fields = [" ".join(f.split()) for f in self.src.display[lb + 1 : rb].split(";") if f.strip()]
        self.m.structs[name] = fields

    def function_name(self, header: str) -> str | None:
        h = header.rstrip()
        close = len(h) - 1
        depth = 0
        for k in range(close, -1, -1):
            if h[k] == ")":
                depth += 1
            elif h[k] == "(":
                depth -= 1
                if depth == 0:
                    nm = re.search(r"(\w+)\s*$", h[:k])
                    return nm.group(1) if nm else None
        return None

    def function(self, hs: int, lb: int, rb: int) -> None:
        src, m, code = self.src, self.m, self.src.code
        header = code[hs:lb].rstrip()
        name = self.function_name(header)
        if not name:
            return
        popen = header.rfind("(", 0, len(header))
        # the '(' that matches the final ')'
        depth = 0
        for k in range(len(header) - 1, -1, -1):
            if header[k] == ")":
                depth += 1
            elif header[k] == "(":
                depth -= 1
                if depth == 0:
                    popen = k
                    break
        params = src.show(hs + popen + 1, hs + len(header) - 1)
        start = hs + (len(code[hs:lb]) - len(code[hs:lb].lstrip()))
        label = src.show(start, lb)
        index = len(m.blocks)
        blk = Block(label=label, start_line=src.line(start), end_line=src.line(rb), function=name, params=params)
        m.blocks.append(blk)
        self.functions[name] = index
        if name in PROBE_MACROS:
            args = split_top(params)
            kind = PROBE_MACROS[name]
            m.use(name, "macro", src.line(start), index)
            probe = Probe(label, kind, src.line(start), via=f"{name}(), attached by BCC itself", block=index)
            if kind == "tracepoint" and len(args) >= 2:
                probe.category, probe.name = args[0], args[1]
                probe.text = f"tracepoint:{args[0]}:{args[1]}"
            elif args:
                probe.name = args[0]
                probe.text = f"{kind}:{args[0]}"
            probe.handler = label
            blk.probes.append(len(m.probes))
            m.probes.append(probe)
        else:
            first = split_top(params)[0] if params.strip() else ""
            ctx = re.search(r"struct\s+(\w+)\s*\*", first)
            if ctx:
                blk.context = ctx.group(1)
            if "SEC" in code[hs:lb]:
                self.libbpf_probe(hs, label, index)
        self.body(lb + 1, rb, index)
        blk.statements = statements(src, lb + 1, rb)

    def body(self, start: int, end: int, block: int) -> None:
        src, m, g, code = self.src, self.m, self.g, self.src.code
        blk = m.blocks[block]
        for t in re.finditer(r"(?P<id>[A-Za-z_]\w*)|(?P<arrow>->)|(?P<dot>\.)", code[start:end]):
            if not t.group("id"):
                continue
            pos = start + t.start()
            word = t.group("id")
            line = src.line(pos)
            before = code[max(start, pos - 2) : pos].rstrip()
            after = skip_space(code, start + t.end())
            is_call = after < end and code[after] == "("
            if before.endswith("->") or before.endswith("."):
                # a member: args->field, or map.method(...)
                recv = re.search(r"(\w+)\s*(?:->|\.)\s*$", code[max(start, pos - 80) : pos])
                if recv and recv.group(1) == "args" and word not in blk.fields_used:
                    blk.fields_used.append(word)
                if is_call and recv:
                    self.method(recv.group(1), word, pos, after, block)
                continue
            if word in self.keywords:
                if word == "if" and is_call:
                    self.if_filter(after, block)
                continue
            if is_call:
                if word in self.functions or word in m.defines:
                    continue
                entry = g.bcc(word)
                if entry:
                    cat = {"bcc_helpers": "helper", "bcc_macros": "macro", "c_builtins": "c_builtin"}[entry.section]
                    m.use(word, cat, line, block)
                    if word in (
                        "bpf_trace_printk",
                        "bpf_perf_event_output",
                        "bpf_ringbuf_output",
                        "bpf_ringbuf_submit",
                    ):
                        blk.prints.append((line, word))
                    if word in ("bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_map_delete_elem"):
                        self.helper_map(word, after, block)
                elif word in PROBE_MACROS:
                    m.use(word, "macro", line, block)
                else:
                    m.use(word, "unknown", line, block, note=self.guess(word))
            elif word.isupper() and len(word) > 1:
                if word in m.defines:
                    continue
                entry = g.bcc(word)
                if entry:
                    m.use(word, "macro", line, block)
                elif any(p == word or word in p for _, p, _ in (m.python.placeholders if m.python else [])):
                    continue
                else:
                    m.use(word, "unknown", line, block, note=self.guess(word))

    def guess(self, word: str) -> str | None:
        if m := next((p for _, p, _r in (self.m.python.placeholders if self.m.python else []) if p == word), None):
            return f"a placeholder the Python code replaces ({m})"
        if word.startswith("bpf_"):
            return "a BPF helper this glossary does not describe yet"
        if word.isupper():
            return "a constant or macro, probably from " + (
                ", ".join(self.m.includes) if self.m.includes else "a kernel header"
            )
        return None

    def method(self, receiver: str, method: str, pos: int, popen: int, block: int) -> None:
        src, m, code = self.src, self.m, self.src.code
        line = src.line(pos)
        pclose = match_bracket(code, popen)
        args = [src.show(x, y) for x, y in split_top_ranges(code, popen + 1, pclose)]
        if receiver in m.maps:
            op = MAP_OPS.get(method, method)
            key = value = None
            if op in ("increment", "lookup", "delete", "update"):
                key = args[0] if args else None
                value = args[1] if len(args) > 1 and op in ("update", "increment") else None
            elif op == "submit":
                value = (
                    args[1]
                    if method in ("perf_submit", "perf_submit_skb") and len(args) > 1
                    else (args[0] if args else None)
                )
            elif op == "stackid":
                value = args[1] if len(args) > 1 else None
            m.maps[receiver].accesses.append(Access(op, line, block, key, value, method))
            if op == "submit":
                m.blocks[block].prints.append((line, f"{receiver}.{method}"))
        entry = self.g.map_method(method)
        if entry:
            m.use(f".{method}", "map_method", line, block)
        elif receiver in m.maps:
            m.use(f".{method}", "unknown", line, block, note=f"a method called on the map {receiver}")

    def helper_map(self, helper: str, popen: int, block: int) -> None:
        code, src = self.src.code, self.src
        pclose = match_bracket(code, popen)
        args = [src.show(x, y) for x, y in split_top_ranges(code, popen + 1, pclose)]
        if not args:
            return
        name = args[0].lstrip("&").strip()
        if name in self.m.maps:
            op = {"bpf_map_lookup_elem": "lookup", "bpf_map_update_elem": "update", "bpf_map_delete_elem": "delete"}[
                helper
            ]
            self.m.maps[name].accesses.append(
                Access(
                    op,
                    src.line(popen),
                    block,
                    args[1] if len(args) > 1 else None,
                    args[2] if len(args) > 2 and op == "update" else None,
                    helper,
                )
            )

    def if_filter(self, popen: int, block: int) -> None:
        code, src = self.src.code, self.src
        pclose = match_bracket(code, popen)
        cond = src.show(popen + 1, pclose)
        k = skip_space(code, pclose + 1)
        body_end = match_bracket(code, k) if k < len(code) and code[k] == "{" else statement_end(code, k)
        body = code[k : body_end + 1]
        kind = "early-return" if re.match(r"\{?\s*return\b", body) else "if"
        self.m.filters.append(Filter(kind, cond, src.line(popen), block))


def _is_statement(text: str) -> bool:
    """A top-level piece that does something (not a declaration, prototype or empty)."""
    t = " ".join(text.split())
    if not t:
        return False
    if re.match(r"^(static\s+|extern\s+)?(typedef|struct|union|enum)\b", t) and "(" not in t:
        return False
    if re.match(r"^[\w\s\*]+\([^()]*\)$", t):  # a prototype
        return False
    if re.match(r"^[\w\s\*\[\]]+$", t):  # a declaration without initializer
        return False
    return "(" in t or "=" in t or "return" in t


# -- putting it together ---------------------------------------------------------------------------
def analyze(text: str, glossary: Glossary | None = None) -> ProgramModel:
    g = glossary or load_glossary()
    model = ProgramModel("bcc", text)
    py: _Py | None = None
    try:
        py = _PyReader(text, g).run()
    except SyntaxError:
        py = None
    if py is not None and (py.fragments or py.attaches or py.api):
        model.python = py.side
        fragments = py.fragments
    else:
        # C only (or Python we cannot parse): the C text is the file, or its triple-quoted strings.
        quoted = [
            (mm.group(2), text.count("\n", 0, mm.start(2)) + 1)
            for mm in re.finditer(r"(\"\"\"|\'\'\')(.*?)\1", text, re.S)
            if _looks_like_c(mm.group(2))
        ]
        fragments = [_Fragment(t, ln) for t, ln in quoted] or [_Fragment(text, 1)]
        if quoted:
            model.python = PythonSide()
            model.notes.append("The Python part could not be parsed (Python 2?); only its C text is explained.")
    joined, line_map = _join(fragments)
    src = scan(joined)
    src.line_map = line_map
    if len(fragments) > 1:
        notes = sorted({f.note for f in fragments if f.note})
        if notes:
            model.notes.append("Part of the C text is put in by the Python code (" + "; ".join(notes) + ").")
    _CScanner(src, model, g).run()
    model.c_line_offset = fragments[0].line - 1 if fragments else 0
    model.title = _title(text)
    if py is not None and model.python is not None:
        _python_probes(model, py, g)
        side = model.python
        side.table_reads = [
            (ln, tb, meth)
            for ln, tb, meth in side.table_reads
            if tb in model.maps or ("[" in tb and (ln, tb, meth) not in py.maybe_tables)
        ]
        for cb, tb in list(side.callbacks.items()):
            if tb not in model.maps and len(model.maps) and tb == "?":
                subs = [mp for mp in model.maps.values() if mp.map_type in ("ringbuf", "perf_event_array")]
                if len(subs) == 1:
                    side.callbacks[cb] = subs[0].name
        for name, line, _kind in py.api:
            model.use(name, "python", line)
        for name, line in py.unknown_api:
            model.use(name, "unknown", line, note="called on the BPF object or a map from Python")
    model.libbpf = model.python is None and looks_like_libbpf(text)
    if model.libbpf:
        for b in model.blocks:
            if b.function == "__outside__":
                b.label = "C code outside the functions"
    else:
        _auto_attached(model)
    return model


def _join(fragments: list[_Fragment]) -> tuple[str, list[int]]:
    parts: list[str] = []
    line_map: list[int] = []
    for f in fragments:
        lines = f.text.split("\n")
        parts.append(f.text)
        line_map.extend(range(f.line, f.line + len(lines)))
    return "\n".join(parts), line_map


def _title(text: str) -> str | None:
    for line in text.splitlines()[:15]:
        s = line.strip()
        if s.startswith("#!") or not s or "lint" in s:
            continue
        mm = re.match(r"#\s*(.+)$", s)
        if mm and len(mm.group(1)) > 3 and not mm.group(1).lower().startswith(("copyright", "licensed", "usage")):
            return mm.group(1)
        if not s.startswith("#"):
            break
    return None


def _python_probes(model: ProgramModel, py: _Py, g: Glossary) -> None:
    by_function = {b.function: i for i, b in enumerate(model.blocks) if b.function}
    for a in py.attaches:
        kind = ATTACH_KINDS.get(a.method, "usdt")
        kw = a.kw
        handler = kw.get("fn_name") or (a.pos[1] if a.method == "attach_xdp" and len(a.pos) > 1 else None)
        if a.method in ("attach_kfunc", "attach_kretfunc", "attach_lsm"):
            # the function was declared with KFUNC_PROBE/LSM_PROBE and is already a probe
            continue
        p = Probe(a.source, kind, a.line, via=a.method + "()", handler=handler)
        if kind in ("kprobe", "kretprobe"):
            p.name = kw.get("event") or kw.get("event_re") or (a.pos[0] if a.pos else "?")
            p.wildcard = "event_re" in kw
            p.text = f"{kind}:{p.name}"
        elif kind in ("tracepoint", "rawtracepoint"):
            tp = kw.get("tp") or kw.get("tp_re") or (a.pos[0] if a.pos else "?")
            p.wildcard = "tp_re" in kw or "*" in tp
            if kind == "tracepoint" and ":" in tp:
                p.category, p.name = tp.split(":", 1)
            else:
                p.name = tp
            p.text = f"{kind}:{tp}"
        elif kind in ("uprobe", "uretprobe"):
            target = kw.get("name") or (a.pos[0] if a.pos else "?")
            sym = kw.get("sym") or kw.get("sym_re") or kw.get("addr") or (a.pos[1] if len(a.pos) > 1 else "?")
            p.target, p.name = target, sym
            p.wildcard = "sym_re" in kw
            p.text = f"{kind}:{target}:{sym}"
        elif kind == "perf_event":
            ev_type = kw.get("ev_type", a.pos[0] if a.pos else "?")
            ev_config = kw.get("ev_config", a.pos[1] if len(a.pos) > 1 else "?")
            p.name = f"{ev_type.split('.')[-1]} {ev_config.split('.')[-1]}".strip()
            if "sample_freq" in kw:
                p.unit, p.rate = "hz", kw["sample_freq"]
            elif "sample_period" in kw:
                p.unit, p.rate = "period", kw["sample_period"]
            p.text = f"perf_event:{ev_type.split('.')[-1]}:{ev_config.split('.')[-1]}" + (
                f":{p.rate}" if p.rate else ""
            )
        elif kind == "xdp":
            p.target = kw.get("dev") or (a.pos[0] if a.pos else "?")
            p.text = f"xdp:{p.target}"
        elif kind == "socket_filter":
            p.target = kw.get("dev") or (a.pos[1] if len(a.pos) > 1 else "?")
            p.text = f"socket_filter:{p.target}"
        else:  # usdt enable_probe
            p.kind = "usdt"
            p.name = kw.get("probe") or (a.pos[0] if a.pos else "?")
            p.target = kw.get("_target")
            p.text = f"usdt:{p.target}:{p.name}"
            p.via = "USDT.enable_probe()"
        if handler in by_function:
            p.block = by_function[handler]
            model.blocks[p.block].probes.append(len(model.probes))
        model.probes.append(p)
    for line, direction, dev, fname in py.tc:
        p = Probe(
            f"tc:{dev}:{direction}", "tc", line, target=dev, name=direction, via="pyroute2 tc add-filter", handler=fname
        )
        if fname in by_function:
            p.block = by_function[fname]
            model.blocks[p.block].probes.append(len(model.probes))
        model.probes.append(p)


def _auto_attached(model: ProgramModel) -> None:
    """Functions BCC attaches by their name prefix (kprobe__do_sys_open, tracepoint__sched__sched_switch)."""
    for i, b in enumerate(model.blocks):
        name = b.function or ""
        for prefix, kind in AUTO_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                rest = name[len(prefix) :]
                p = Probe(
                    f"{kind}:{rest}",
                    kind,
                    b.start_line,
                    via=f"the {prefix} name prefix (BCC attaches it itself)",
                    handler=name,
                    block=i,
                )
                if kind == "tracepoint" and "__" in rest:
                    p.category, p.name = rest.split("__", 1)
                    p.text = f"tracepoint:{p.category}:{p.name}"
                else:
                    p.name = rest
                b.probes.append(len(model.probes))
                model.probes.append(p)
                break
