"""The Python half of a BCC program, read with ``ast``: where the C text comes from (BPF(text=...), strings
put together, placeholders replaced), the attach calls, the output loop and the maps read."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .glossary import Glossary
from .model import PythonSide

# BCC's attach methods and the probe kind each attaches (USDT.enable_probe attaches usdt)
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
POLLS = {
    "perf_buffer_poll",
    "ring_buffer_poll",
    "ring_buffer_consume",
    "trace_print",
    "trace_fields",
    "trace_readline",
    "kprobe_poll",
}


@dataclass
class Fragment:
    text: str
    line: int  # file line of the text's first line
    note: str | None = None


@dataclass
class Attach:
    method: str
    line: int
    kw: dict[str, str]  # resolved argument text
    pos: list[str]
    source: str


@dataclass
class PythonScan:
    fragments: list[Fragment] = field(default_factory=list)
    side: PythonSide = field(default_factory=PythonSide)
    attaches: list[Attach] = field(default_factory=list)
    api: list[tuple[str, int, str | None]] = field(default_factory=list)  # (method, line, receiver kind)
    unknown_api: list[tuple[str, int]] = field(default_factory=list)
    loaded: dict[str, tuple[str, str]] = field(default_factory=dict)  # variable -> (function, program type)
    tc: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # (line, direction, dev, fn var)
    usdt_targets: dict[str, str] = field(default_factory=dict)
    maybe_tables: list[tuple[int, str, str]] = field(default_factory=list)


class PythonReader:
    def __init__(self, text: str, glossary: Glossary) -> None:
        self.text = text
        self.g = glossary
        self.out = PythonScan()
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

    def seg(self, node: ast.expr) -> str:
        """The source text of a node (ast.get_source_segment splits the file on every call: too slow)."""
        end_lineno, end_col = node.end_lineno, node.end_col_offset
        if end_lineno is None or end_col is None:
            return ""
        try:
            start = self.line_starts[node.lineno - 1] + _char_offset(self.lines[node.lineno - 1], node.col_offset)
            end = self.line_starts[end_lineno - 1] + _char_offset(self.lines[end_lineno - 1], end_col)
        except IndexError:
            return ""
        return self.text[start:end].strip()

    def run(self) -> PythonScan:
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
            if not isinstance(node, ast.Constant):
                continue
            value = _text_const(node)
            if value is not None and looks_like_c(value) and not any(f.text == value for f in self.out.fragments):
                self._fragment(node, "assembled by the Python code" if followed else None)
        self.out.fragments.sort(key=lambda f: f.line)

    def _collect(self, e: ast.expr, seen: set[int], depth: int) -> None:
        if depth > 12 or id(e) in seen:
            return
        seen.add(id(e))
        if isinstance(e, ast.Constant) and _text_const(e) is not None:
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
        if isinstance(e, ast.Constant) and _text_const(e) is not None:
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
        self.out.fragments.append(Fragment(text, line or node.lineno, note))

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
        self.parents: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.funcs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.callsites: dict[str, list[ast.Call]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.funcs[node.name] = node
                for inner in ast.walk(node):
                    if inner is not node:
                        self.parents[id(inner)] = node
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                self.callsites.setdefault(node.func.id, []).append(node)

    def _enclosing(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
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
                a = Attach(attr, node.lineno, kw, pos, self.seg(node))
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


def looks_like_c(s: str) -> bool:
    return bool(re.search(r"#include|\bBPF_[A-Z_]+\s*\(|\bbpf_\w+\s*\(|TRACEPOINT_PROBE|struct pt_regs", s))
