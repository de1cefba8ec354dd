"""A scanner for bpftrace scripts (not a parser): probe headers, predicates, blocks, @maps, $variables,
calls, builtins and the statements of each block."""

from __future__ import annotations

import re

from ..lang.bpftrace_lexer import loose_tokens
from ..spec import kinds
from .glossary import Glossary
from .glossary import load as load_glossary
from .model import KERNEL_FUNCTION_KINDS, PERF_KINDS, TIMER_KINDS, Access, Block, Filter, Probe, ProgramModel, Variable
from .source import (
    Source,
    enclosing_call,
    match_bracket,
    scan,
    skip_space,
    split_top,
    statement_end,
    statements,
)

# How a probe's text after the kind is split (kind:[module:]function, or kind:file:place)
MODULE_FUNCTION_KINDS = KERNEL_FUNCTION_KINDS | {"rawtracepoint", "lsm"}
FILE_PLACE_KINDS = (kinds.USER_KINDS - {"usdt"}) | kinds.of_family("memory")
PROBE_TOKEN = re.compile(r"[^\s,]+")
MAP_FUNCS = {"delete", "clear", "print", "zero", "len", "has_key"}


def looks_like_bpftrace(text: str) -> bool:
    src = scan(text)
    return bool(re.search(r"(?m)^\s*(?:(?:[A-Za-z]+):[^\s{]*|BEGIN|END)\s*(?:,|/|\{|$)", src.code)) and "{" in src.code


def unwrap_command(text: str) -> str:
    """A shell line like ``sudo bpftrace -e '...'`` → the program inside the quotes."""
    import shlex

    stripped = text.strip()
    if not re.match(r"^(?:sudo\s+)?(?:\S*/)?bpftrace\b", stripped):
        return text
    try:
        argv = shlex.split(stripped.replace("\\\n", " "))
    except ValueError:
        return text
    for i, a in enumerate(argv):
        if a == "-e" and i + 1 < len(argv):
            return argv[i + 1]
    return text


def parse_probe(token: str, line: int) -> Probe:
    """One probe as written: ``t:syscalls:sys_enter_*``, ``uprobe:/bin/bash:readline``, ``profile:hz:99``."""
    if token in ("BEGIN", "END", "begin", "end"):
        return Probe(token, token.upper(), line)
    kind, _, rest = token.partition(":")
    kind = kinds.ALL_ALIASES.get(kind, kind)  # bpftrace's short names (k:, ur:, w:, ...)
    wildcard = any(ch in token for ch in "*?[")
    p = Probe(token, kind, line, wildcard=wildcard)
    parts = rest.split(":") if rest else []
    if kind == "tracepoint" and len(parts) >= 2:
        p.category, p.name = parts[0], ":".join(parts[1:])
    elif kind in MODULE_FUNCTION_KINDS:
        if len(parts) >= 2:  # module:function
            p.target, p.name = parts[0], parts[-1]
        else:
            p.name = rest
        if p.name and "+" in p.name:
            p.name = p.name.split("+")[0]
    elif kind in FILE_PLACE_KINDS:
        if len(parts) >= 2:
            p.target, p.name = ":".join(parts[:-1]), parts[-1]
        else:
            p.name = rest
    elif kind == "usdt":
        if len(parts) >= 3:
            p.target, p.category, p.name = parts[0], parts[1], parts[2]
        elif len(parts) == 2:
            p.target, p.name = parts
        else:
            p.name = rest
    elif kind in TIMER_KINDS:
        if len(parts) >= 2:
            p.unit, p.rate = parts[0], parts[1]
        elif parts:
            m = re.match(r"(\d+)(\w*)", parts[0])
            p.unit, p.rate = (m.group(2) or "hz", m.group(1)) if m else (None, parts[0])
    elif kind in PERF_KINDS:
        p.name = parts[0] if parts else rest
        p.rate = parts[1] if len(parts) > 1 else None
    elif kind == "iter":
        p.name = rest
    else:
        p.name = rest or None
    return p


class _Scanner:
    def __init__(self, text: str, glossary: Glossary) -> None:
        self.g = glossary
        self.src: Source = scan(text)
        self.m = ProgramModel("bpftrace", text)
        self.keywords = glossary.words("bpftrace_keywords")
        self.types = glossary.words("bpftrace_types")

    def run(self) -> ProgramModel:
        src, m = self.src, self.m
        m.take_directives(src.preprocessor)
        m.title = _first_comment(src.text)
        code = src.code
        i, n, hstart = 0, len(code), 0
        while i < n:
            ch = code[i]
            if ch == ";":
                hstart = i + 1
            elif ch == "{":
                header = code[hstart:i]
                end = match_bracket(code, i)
                if re.match(r"\s*(struct|union|enum)\b", header):
                    self.struct(header, i, end)
                elif re.match(r"\s*config\s*=", header):
                    pass
                elif header.strip():
                    self.block(hstart, i, end)
                i, hstart = end + 1, end + 1
                continue
            i += 1
        return m

    # -- top level ---------------------------------------------------------------------------------
    def struct(self, header: str, lbrace: int, rbrace: int) -> None:
        name = " ".join(header.split())
        fields = [" ".join(f.split()) for f in self.src.display[lbrace + 1 : rbrace].split(";") if f.strip()]
        self.m.structs[name] = fields

    def block(self, hstart: int, lbrace: int, rbrace: int) -> None:
        src, m, code = self.src, self.m, self.src.code
        header = code[hstart:lbrace]
        # The predicate starts at a '/' that begins a word (a uprobe path's '/' follows a ':').
        pred_at = None
        for k, ch in enumerate(header):
            if ch == "/" and (k == 0 or header[k - 1].isspace() or header[k - 1] == ","):
                pred_at = k
                break
        probes_text = header if pred_at is None else header[:pred_at]
        index = len(m.blocks)
        first = hstart + len(probes_text) - len(probes_text.lstrip())
        blk = Block(label="", start_line=src.line(first), end_line=src.line(rbrace))
        m.blocks.append(blk)
        for tok in PROBE_TOKEN.finditer(probes_text):
            probe = parse_probe(tok.group(0), src.line(hstart + tok.start()))
            probe.block = index
            blk.probes.append(len(m.probes))
            m.probes.append(probe)
        if pred_at is not None:
            pstart = hstart + pred_at + 1
            pend = hstart + header.rstrip().rfind("/")
            if pend <= pstart:
                pend = lbrace
            blk.predicate = src.show(pstart, pend)
            m.filters.append(Filter("predicate", blk.predicate, src.line(pstart), index))
            self.tokens(pstart, pend, index)
        blk.label = " ".join(src.display[first:lbrace].split())
        self.tokens(lbrace + 1, rbrace, index)
        blk.statements = statements(src, lbrace + 1, rbrace)

    # -- names ---------------------------------------------------------------------------------------
    def tokens(self, start: int, end: int, block: int) -> None:
        src, m, g, code = self.src, self.m, self.g, self.src.code
        blk = m.blocks[block] if block < len(m.blocks) else None
        prev: list[str] = []  # the last few significant tokens
        for t in loose_tokens(code, start, end):
            kind, value, pos = t.kind, t.text, t.pos
            line = src.line(pos)
            if kind == "map":
                self.map_token(value, pos, t.end, block)
            elif kind == "var":
                if re.fullmatch(r"\$\d+", value):
                    m.use("$N", "builtin", line, block)
                else:
                    self.var_token(value, pos, t.end, block)
            elif kind == "ident":
                after = skip_space(code, t.end)
                is_call = after < end and code[after] == "("
                last = prev[-1] if prev else ""
                if last in ("->", "."):
                    if len(prev) >= 2 and prev[-2] == "args" and blk is not None and value not in blk.fields_used:
                        blk.fields_used.append(value)
                elif last in ("struct", "union", "enum"):
                    pass
                elif value in self.keywords or value in self.types:
                    if value == "if":
                        self.if_cond(after, end, block)
                elif is_call and (function := g.bt_function(value)):
                    m.use(value, "function", line, block)
                    if function.kind == "print" and blk is not None:
                        blk.prints.append((line, value))
                elif g.bt_builtin(value):
                    m.use(_builtin_key(value), "builtin", line, block)
                elif value in m.defines:
                    m.use(value, "macro", line, block, note="a macro #define'd in this program")
                elif value.isupper() and (c_name := g.bcc(value)) and c_name.section == "bcc_macros":
                    m.use(value, "constant", line, block)
                else:
                    note = None
                    if value.isupper() and m.includes:
                        note = f"probably a constant from {', '.join(m.includes)}"
                    elif is_call:
                        note = "a function bpftrace does not have (or a newer/older bpftrace's)"
                    m.use(value, "unknown", line, block, note=note)
            elif kind == "str":
                pass
            prev.append(value)
            if len(prev) > 3:
                prev.pop(0)

    def map_token(self, name: str, pos: int, end: int, block: int) -> None:
        src, code = self.src, self.src.code
        line = src.line(pos)
        info = self.m.map(name, line)
        key = None
        j = skip_space(code, end)
        if j < len(code) and code[j] == "[":
            close = match_bracket(code, j)
            key = src.show(j + 1, close)
            j = skip_space(code, close + 1)
        call = enclosing_call(code, pos, 0)
        if call and call[0] in MAP_FUNCS:
            info.accesses.append(Access(call[0], line, block, key))
            return
        op = re.match(r"(\+\+|--|[-+*/|&]?=(?!=)|<<=|>>=)", code[j : j + 3])
        if op:
            rhs_start = skip_space(code, j + len(op.group(1)))
            rhs_end = statement_end(code, rhs_start)
            value = src.show(rhs_start, rhs_end) if op.group(1) not in ("++", "--") else None
            func = None
            fm = re.match(r"([a-z_]+)\s*\(", code[rhs_start:rhs_end])
            if fm and (function := self.g.bt_function(fm.group(1))) and function.kind == "aggregate":
                func = fm.group(1)
            if op.group(1) in ("++", "--", "+=", "-="):
                info.accesses.append(Access("increment", line, block, key, value, op.group(1)))
            else:
                info.accesses.append(Access("aggregate" if func else "assign", line, block, key, value, func))
            return
        info.accesses.append(Access("read", line, block, key))

    def var_token(self, name: str, pos: int, end: int, block: int) -> None:
        code, src = self.src.code, self.src
        j = skip_space(code, end)
        op = re.match(r"=(?!=)", code[j : j + 2])
        if name not in self.m.variables:
            value = None
            if op:
                rs = skip_space(code, j + 1)
                value = src.show(rs, statement_end(code, rs))
            self.m.variables[name] = Variable(name, src.line(pos), value, block)

    def if_cond(self, pos: int, end: int, block: int) -> None:
        code = self.src.code
        if pos < end and code[pos] == "(":
            close = match_bracket(code, pos)
            self.m.filters.append(Filter("if", self.src.show(pos + 1, close), self.src.line(pos), block))


def _builtin_key(name: str) -> str:
    if re.fullmatch(r"arg\d+", name) or re.fullmatch(r"sarg\d+", name):
        return name
    return name


def _first_comment(text: str) -> str | None:
    """The program's own one-line description: the first comment after the shebang."""
    for line in text.splitlines()[:12]:
        s = line.strip()
        if s.startswith("#!") or not s:
            continue
        m = re.match(r"(?://+|/\*+|\*+|#)\s*(.+?)\s*(?:\*/)?$", s)
        if m and len(m.group(1)) > 3 and not m.group(1).lower().startswith(("copyright", "licensed", "spdx")):
            return m.group(1)
        if not s.startswith(("//", "/*", "*", "#")):
            break
    return None


def analyze(text: str, glossary: Glossary | None = None) -> ProgramModel:
    return _Scanner(unwrap_command(text), glossary or load_glossary()).run()


def printf_pairs(statement: str) -> tuple[str, list[tuple[str, str]]] | None:
    """For printf("fmt", a, b): the format and (conversion, argument) pairs."""
    m = re.match(r"printf\s*\((.*)\)\s*$", statement, re.S)
    if not m:
        return None
    parts = split_top(m.group(1))
    if not parts or not parts[0].startswith('"'):
        return None
    fmt = parts[0]
    convs = re.findall(r"%[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?[a-zA-Z]", fmt.replace("%%", ""))
    return fmt, list(zip(convs, parts[1:], strict=False))


__all__ = ["analyze", "looks_like_bpftrace", "parse_probe", "printf_pairs"]
