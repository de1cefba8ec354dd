"""The C half of a BCC program (or a libbpf program's C): map declarations, BPF functions and the probes
they are attached to by name, macro or SEC(), helpers, map methods and filters."""

from __future__ import annotations

import re

from .glossary import Glossary
from .model import Access, Block, Filter, Probe, ProgramModel
from .source import Source, match_bracket, skip_space, split_top, split_top_ranges, statement_end, statements

PROBE_MACROS = {
    "TRACEPOINT_PROBE": "tracepoint",
    "RAW_TRACEPOINT_PROBE": "rawtracepoint",
    "KFUNC_PROBE": "kfunc",
    "KRETFUNC_PROBE": "kretfunc",
    "LSM_PROBE": "lsm",
    "KMOD_RET": "kfunc",
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


# libbpf section names (SEC("...")) → probe kind; the rest of the name says where
LIBBPF_SECTIONS = {"tracepoint": "tracepoint", "tp": "tracepoint", "raw_tracepoint": "rawtracepoint",
                   "raw_tp": "rawtracepoint", "kprobe": "kprobe", "kretprobe": "kretprobe", "uprobe": "uprobe",
                   "uretprobe": "uretprobe", "fentry": "kfunc", "fexit": "kretfunc", "lsm": "lsm", "xdp": "xdp",
                   "tc": "tc", "usdt": "usdt", "perf_event": "software"}
LIBBPF_MAP_TYPES = {"HASH": "hash", "ARRAY": "array", "PERCPU_ARRAY": "percpu_array", "PERCPU_HASH": "percpu_hash",
                    "LRU_HASH": "lru_hash", "RINGBUF": "ringbuf", "PERF_EVENT_ARRAY": "perf_event_array",
                    "STACK_TRACE": "stack_trace", "LPM_TRIE": "lpm_trie", "QUEUE": "queue", "PROG_ARRAY": "prog_array"}


class CScanner:
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
        key: str | None
        leaf: str | None
        size: str | None
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
