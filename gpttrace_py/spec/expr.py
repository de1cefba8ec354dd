"""The expression language of a program spec.

Filters, map keys, printed values and aggregated values are written in one small, backend-neutral
language, close to what bpftrace and C share:

    args.filename          a field of the probe's tracepoint (``args->filename`` is accepted too)
    pid, tid, comm, uid, cpu, nsecs, retval, arg0..arg9, kstack, ustack, cgroup, func, probe
    delta                  in a start/end pair: nanoseconds since the start probe fired
    pkt_len, eth_proto, ip_proto, ip_src, ip_dst, src_port, dst_port, ifindex
                           at xdp/tc probes (BCC backend only): fields of the packet
    start.NAME             in a start/end pair: a value saved by the start probe
    str(x), ntop(x), ksym(x), usym(x), join(x), kstack(n), ustack(n)
    strncmp(x, "text", n)  0 when the first n characters of x are those of "text" (a prefix test)
    literals 42 0x1f "text", operators ! ~ - * / % + - << >> < <= > >= == != & ^ | && || ?:
    x[3]                   an element of an array field

Text is parsed into a tree here and only the tree is rendered, so nothing in an expression reaches
program text without passing this grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

BUILTINS: dict[str, str] = {
    "pid": "process id (the kernel's tgid)",
    "tid": "thread id",
    "uid": "user id",
    "gid": "group id",
    "comm": "process name (16 bytes at most)",
    "cpu": "CPU the probe fired on",
    "nsecs": "monotonic timestamp in nanoseconds",
    "retval": "return value of a uretprobe/kretprobe/kretfunc",
    "kstack": "kernel stack",
    "ustack": "user-space stack",
    "cgroup": "cgroup v2 id",
    "func": "name of the traced function",
    "probe": "full name of the probe that fired",
    "delta": "nanoseconds since the start probe of this pair fired",
}
BUILTINS.update({f"arg{i}": f"argument {i} of a kprobe/uprobe" for i in range(10)})

# Values of the packet at an xdp:IFACE or tc:IFACE:DIRECTION probe (BCC backend only). Headers that are
# absent or truncated read as 0; addresses are IPv4 and print as dotted quads.
PACKET_BUILTINS: dict[str, str] = {
    "pkt_len": "packet length in bytes (xdp/tc)",
    "eth_proto": "EtherType of the packet, e.g. 0x0800 for IPv4, 0x86dd for IPv6 (xdp/tc)",
    "ip_proto": "IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 (xdp/tc)",
    "ip_src": "IPv4 source address (xdp/tc)",
    "ip_dst": "IPv4 destination address (xdp/tc)",
    "src_port": "TCP/UDP source port (xdp/tc)",
    "dst_port": "TCP/UDP destination port (xdp/tc)",
    "ifindex": "index of the interface the packet is on (xdp/tc)",
}
BUILTINS.update(PACKET_BUILTINS)

FUNCTIONS: dict[str, tuple[int, int]] = {
    # name: (min args, max args)
    "str": (1, 2),
    "ntop": (1, 1),
    "ksym": (1, 1),
    "usym": (1, 1),
    "join": (1, 1),
    "kstack": (0, 1),
    "ustack": (0, 1),
    "strncmp": (3, 3),
}
STRNCMP_MAX = 64  # characters a prefix test compares at most (both backends unroll it)

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>0[xX][0-9a-fA-F]+|\d+)
  | (?P<str>"(?:[^"\\\n]|\\[\\"nt])*")
  | (?P<arrow>->)
  | (?P<op>&&|\|\||<<|>>|<=|>=|==|!=|[-+*/%<>!~&|^?:(),.\[\]])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)

MAX_EXPR_LEN = 400


class ExprError(ValueError):
    """An expression that does not follow the grammar."""


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Builtin:
    name: str


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Saved:
    name: str


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Ternary:
    cond: Node
    then: Node
    other: Node


@dataclass(frozen=True)
class Index:
    base: Node
    index: int


Node = Num | Str | Builtin | Field | Saved | Call | Unary | Binary | Ternary | Index

BINARY_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    "<=": 7,
    ">": 7,
    ">=": 7,
    "<<": 8,
    ">>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r} at column {pos + 1}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, m.group()))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ExprError("expression ends too early")
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise ExprError(f"expected {value!r}, found {tok[1]!r}")

    def parse(self) -> Node:
        node = self.ternary()
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.peek()[1]!r} after a complete expression")  # type: ignore[index]
        return node

    def ternary(self) -> Node:
        cond = self.binary(1)
        tok = self.peek()
        if tok and tok[1] == "?":
            self.take()
            then = self.ternary()
            self.expect(":")
            other = self.ternary()
            return Ternary(cond, then, other)
        return cond

    def binary(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            tok = self.peek()
            if not tok or tok[0] != "op" or tok[1] not in BINARY_PRECEDENCE:
                return left
            prec = BINARY_PRECEDENCE[tok[1]]
            if prec < min_prec:
                return left
            self.take()
            right = self.binary(prec + 1)
            left = Binary(tok[1], left, right)

    def unary(self) -> Node:
        tok = self.peek()
        if tok and tok[1] in ("!", "-", "~"):
            self.take()
            return Unary(tok[1], self.unary())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            tok = self.peek()
            if not tok or tok[1] != "[":
                return node
            self.take()
            idx = self.take()
            if idx[0] != "num":
                raise ExprError("an array index must be a number")
            self.expect("]")
            node = Index(node, int(idx[1], 0))

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "num":
            return Num(int(value, 0))
        if kind == "str":
            body = value[1:-1]
            bad = next((c for c in body if not " " <= c <= "~"), None)
            if bad is not None:  # programs compare bytes: other characters could not match as written
                raise ExprError(f"a string literal may hold printable ASCII only (and \\n \\t \\\\ \\\"), not {bad!r}")
            return Str(re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body))
        if value == "(":
            node = self.ternary()
            self.expect(")")
            return node
        if kind != "name":
            raise ExprError(f"unexpected {value!r}")
        nxt = self.peek()
        if value in ("args", "start") and nxt and nxt[1] in (".", "->"):
            self.take()
            name_kind, name = self.take()
            if name_kind != "name":
                raise ExprError(f"expected a field name after {value}.")
            return Field(name) if value == "args" else Saved(name)
        if nxt and nxt[1] == "(":
            if value not in FUNCTIONS:
                raise ExprError(f"unknown function {value}(); known: {', '.join(sorted(FUNCTIONS))}")
            self.take()
            call_args: list[Node] = []
            if self.peek() and self.peek()[1] != ")":  # type: ignore[index]
                call_args.append(self.ternary())
                while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                    self.take()
                    call_args.append(self.ternary())
            self.expect(")")
            lo, hi = FUNCTIONS[value]
            if not lo <= len(call_args) <= hi:
                raise ExprError(f"{value}() takes {lo}..{hi} arguments, got {len(call_args)}")
            if value in ("kstack", "ustack"):
                if call_args and not isinstance(call_args[0], Num):
                    raise ExprError(f"{value}(n) takes a number of frames")
                return Call(value, tuple(call_args))
            if value == "str" and len(call_args) == 2 and not isinstance(call_args[1], Num):
                raise ExprError("str(x, n) takes a literal length")
            if value == "strncmp" and not (
                not isinstance(call_args[0], (Num, Str)) and isinstance(call_args[1], Str)
                and isinstance(call_args[2], Num) and 0 < call_args[2].value <= STRNCMP_MAX
            ):
                raise ExprError(f'strncmp(x, "text", n) compares a text value with a literal, n from 1 to '
                                f"{STRNCMP_MAX}")
            return Call(value, tuple(call_args))
        if value in BUILTINS:
            return Builtin(value)
        raise ExprError(
            f"unknown name {value!r}: use args.FIELD for a tracepoint field or one of {', '.join(sorted(BUILTINS))}"
        )


@lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """Parse an expression, raising ExprError with a reason a user or a model can act on."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError("empty expression")
    if len(text) > MAX_EXPR_LEN:
        raise ExprError(f"expression longer than {MAX_EXPR_LEN} characters")
    return _Parser(text).parse()


def walk(node: Node) -> Iterator[Node]:
    """Yield every node of a tree, parents first."""
    yield node
    if isinstance(node, Call):
        for a in node.args:
            yield from walk(a)
    elif isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, Binary):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Ternary):
        yield from walk(node.cond)
        yield from walk(node.then)
        yield from walk(node.other)
    elif isinstance(node, Index):
        yield from walk(node.base)


def fields_used(text: str) -> set[str]:
    return {n.name for n in walk(parse(text)) if isinstance(n, Field)}


def saved_used(text: str) -> set[str]:
    return {n.name for n in walk(parse(text)) if isinstance(n, Saved)}


def builtins_used(text: str) -> set[str]:
    out = {n.name for n in walk(parse(text)) if isinstance(n, Builtin)}
    out |= {n.fn for n in walk(parse(text)) if isinstance(n, Call) and n.fn in ("kstack", "ustack")}
    return out


# -- writing a tree back, and editing it ---------------------------------------------------------------------
_UNARY_PRECEDENCE = 11  # binds tighter than any binary operator
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def unparse(node: Node) -> str:
    """The text of a tree, parsing back to the same tree (``parse(unparse(n)) == n``). Parentheses only where
    the grammar needs them, so an edit written back reads like what was typed."""
    return _unparse(node, 0)


def _unparse(node: Node, outer: int) -> str:
    """``node`` as text inside a context that binds at ``outer`` (0: nothing around it)."""
    if isinstance(node, Num):
        return str(node.value)
    if isinstance(node, Str):
        return '"' + "".join(_ESCAPES.get(c, c) for c in node.value) + '"'
    if isinstance(node, Builtin):
        return node.name
    if isinstance(node, Field):
        return f"args.{node.name}"
    if isinstance(node, Saved):
        return f"start.{node.name}"
    if isinstance(node, Call):
        return f"{node.fn}({', '.join(_unparse(a, 0) for a in node.args)})"
    if isinstance(node, Index):
        return f"{_unparse(node.base, _UNARY_PRECEDENCE + 1)}[{node.index}]"
    if isinstance(node, Unary):
        text = f"{node.op}{_unparse(node.operand, _UNARY_PRECEDENCE)}"
        return f"({text})" if outer > _UNARY_PRECEDENCE else text
    if isinstance(node, Binary):
        prec = BINARY_PRECEDENCE[node.op]
        # left-associative: a right operand of the same precedence needs parentheses (a - (b - c))
        text = f"{_unparse(node.left, prec)} {node.op} {_unparse(node.right, prec + 1)}"
        return f"({text})" if outer > prec else text
    if isinstance(node, Ternary):
        text = f"{_unparse(node.cond, 1)} ? {_unparse(node.then, 0)} : {_unparse(node.other, 0)}"
        return f"({text})" if outer > 0 else text
    raise TypeError(f"not an expression node: {node!r}")


def transform(node: Node, change: Callable[[Node], Node | None]) -> Node:
    """A new tree: each node for which ``change`` returns a node is replaced by it (its children are not
    visited); the others are rebuilt from their transformed children. Literals are never visited as text."""
    new = change(node)
    if new is not None:
        return new
    if isinstance(node, Call):
        return Call(node.fn, tuple(transform(a, change) for a in node.args))
    if isinstance(node, Unary):
        return Unary(node.op, transform(node.operand, change))
    if isinstance(node, Binary):
        return Binary(node.op, transform(node.left, change), transform(node.right, change))
    if isinstance(node, Ternary):
        return Ternary(transform(node.cond, change), transform(node.then, change), transform(node.other, change))
    if isinstance(node, Index):
        return Index(transform(node.base, change), node.index)
    return node


def rewrite(text: str, change: Callable[[Node], Node | None]) -> str:
    """``text`` with ``transform`` applied, written back; the text itself when nothing changed."""
    tree = parse(text)
    new = transform(tree, change)
    return text if new == tree else unparse(new)


def fields_to_saved(text: str, names: set[str] | None = None) -> str:
    """Each ``args.X`` (of ``names``, or all) read as ``start.X``: what a start probe saved for an end probe."""
    return rewrite(text, lambda n: Saved(n.name) if isinstance(n, Field) and (names is None or n.name in names)
                   else None)


def builtins_to_saved(text: str, names: set[str]) -> str:
    """Each builtin of ``names`` (``arg0``, ``comm``...) read as ``start.<name>``."""
    return rewrite(text, lambda n: Saved(n.name) if isinstance(n, Builtin) and n.name in names else None)


def substitute_saved(text: str, values: dict[str, str]) -> str:
    """Each ``start.X`` of ``values`` replaced by the expression ``values[X]`` (read where it was saved)."""
    trees = {name: parse(v) for name, v in values.items()}
    return rewrite(text, lambda n: trees[n.name] if isinstance(n, Saved) and n.name in trees else None)


def conjuncts(text: str) -> list[Node]:
    """The terms of a filter that are and-ed together: ``a && (b && c)`` is [a, b, c]."""
    out: list[Node] = []

    def add(node: Node) -> None:
        if isinstance(node, Binary) and node.op == "&&":
            add(node.left)
            add(node.right)
        else:
            out.append(node)

    add(parse(text))
    return out


def literals(text: str) -> list[str]:
    """The string literals of an expression, in order."""
    return [n.value for n in walk(parse(text)) if isinstance(n, Str)]
