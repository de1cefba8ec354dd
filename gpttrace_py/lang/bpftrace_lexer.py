"""The one bpftrace lexer, and the two readings built on it.

* ``iter_tokens(text)`` / ``bpftrace_tokens(text)``: the tokens of bpftrace text, with bpftrace 0.17's string
  rules. It never fails: text that is not bpftrace becomes ``badstr``, ``badcomment`` and ``other`` tokens, so
  the explainer can read anything (``loose_tokens``); the unsafe-call check (safety.py) finds calls outside
  strings and comments with ``called_names``; the runner finds the last top-level END block with
  ``top_level_blocks``.
* ``bpftrace_outline(text)``: probes, predicates, blocks, statements, string literals and calls. The injection
  tests use it to show that text from a user or a model never changes a program's structure, and a client's
  program must read as one before it runs (agent/client_program.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<badcomment>/\*)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<badstr>"[^\n]*)
  | (?P<char>'(?:[^'\\\n]|\\[^\n]{1,3})')
  | (?P<map>@(?:[A-Za-z_][A-Za-z0-9_]*)?)
  | (?P<var>\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>0[xX][0-9a-fA-F]+|[0-9]+)
  | (?P<punct>->|&&|\|\||<<=|>>=|<<|>>|<=|>=|==|!=|\+\+|--|[-+*/%&|^]=|[-+*/%<>!~&|^?:(),.\[\];{}=])
  | (?P<other>.)
    """,
    re.S | re.X,
)
# What the bpftrace 0.17 lexer accepts inside "...": printable characters and these escapes.
_GOOD_STRING = re.compile(r'"(?:[ !#-\[\]-~]|\\(?:[ntr"\\]|[0-7]{1,3}|x[0-9a-fA-F]{2}))*"\Z')
_ATTACH = re.compile(r"[A-Za-z_][^\s,{}]*")
_KEYWORDS = {"if", "else", "while", "unroll", "for", "return", "sizeof", "offsetof"}
_NUMBER_TAIL = re.compile(r"[\w.]+")
TRIVIA = ("ws", "comment", "directive")  # the kinds of token that mean nothing to the program


class Token(NamedTuple):
    kind: str  # ws comment directive str char map var ident num punct, and the errors badstr badcomment other
    text: str
    pos: int

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    def is_punct(self, text: str) -> bool:
        return self.kind == "punct" and self.text == text


def iter_tokens(text: str, pos: int = 0, end: int | None = None) -> Iterator[Token]:
    """Tokens of ``text[pos:end]`` (offsets into ``text``); a ``#`` at the start of a line is a preprocessor
    ``directive`` token, up to the end of its line."""
    end = len(text) if end is None else end
    while pos < end:
        if text[pos] == "#" and text[text.rfind("\n", 0, pos) + 1:pos].strip() == "":
            nl = text.find("\n", pos, end)
            nl = end if nl == -1 else nl
            yield Token("directive", text[pos:nl], pos)
            pos = nl
            continue
        m = _TOKEN.match(text, pos, end)
        assert m is not None  # the last alternative matches any character
        yield Token(m.lastgroup or "other", m.group(), pos)
        pos = m.end()


def loose_tokens(code: str, start: int, end: int) -> Iterator[Token]:
    """The explainer's reading of ``code[start:end]``, text that may not be bpftrace (a newer bpftrace's, C's):
    the tokens without whitespace, and a number read with the letters, digits and dots written against it
    (10ms, 0xffULL, 1.5, 1_000)."""
    number: Token | None = None
    for tok in iter_tokens(code, start, end):
        if number is not None:
            if tok.pos == number.end and _NUMBER_TAIL.fullmatch(tok.text):
                number = Token("num", number.text + tok.text, number.pos)
                continue
            yield number
            number = None
        if tok.kind == "ws" or tok.text.isspace():
            continue
        if tok.kind == "num":
            number = tok
        else:
            yield tok
    if number is not None:
        yield number


def bpftrace_tokens(text: str) -> list[Token]:
    """Tokens of bpftrace text; a ``#`` at the start of a line is a preprocessor ``directive`` token."""
    return list(iter_tokens(text))


def called_names(tokens: list[Token]) -> list[str]:
    """Identifiers called like functions (``name(``), outside strings and comments."""
    code = [t for t in tokens if t.kind not in TRIVIA]
    return [t.text for t, nxt in itertools.pairwise(code)
            if t.kind == "ident" and nxt.text == "(" and t.text not in _KEYWORDS]


# -- top-level blocks ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopBlock:
    """A ``{...}`` at the top level of a program: a probe block (or a struct, or a config block)."""

    probes: tuple[str, ...]  # the header's comma-separated parts before a predicate, as written: ("END",)
    open: int  # offset of '{'
    close: int | None  # offset of the matching '}'; None when the text ends first
    last: Token | None  # the last token inside, trivia aside


def _probes(header: list[Token], text: str) -> tuple[str, ...]:
    """The probe list of a block header: up to a ``/`` that starts a predicate (one that follows a space or
    a comma: a uprobe path's ``/`` is written against the ``:`` before it)."""
    parts: list[list[Token]] = [[]]
    for i, tok in enumerate(header):
        if tok.is_punct("/") and (i == 0 or header[i - 1].end != tok.pos or header[i - 1].is_punct(",")):
            break
        if tok.is_punct(","):
            parts.append([])
        else:
            parts[-1].append(tok)
    return tuple(text[p[0].pos:p[-1].end] for p in parts if p)


def top_level_blocks(text: str) -> tuple[list[TopBlock], bool]:
    """The top-level blocks of bpftrace text, in order, and whether anything but trivia follows the last
    one's ``}``. Only braces count: strings, characters and comments are tokens of their own."""
    blocks: list[TopBlock] = []
    header: list[Token] = []
    depth, opened, last = 0, 0, None
    for tok in iter_tokens(text):
        if tok.kind in TRIVIA:
            continue
        if depth == 0:
            if tok.is_punct("{"):
                depth, opened, last = 1, tok.pos, None
            elif tok.is_punct(";"):  # struct X { ... };
                header = []
            else:
                header.append(tok)
            continue
        if tok.is_punct("{"):
            depth += 1
        elif tok.is_punct("}"):
            depth -= 1
            if depth == 0:
                blocks.append(TopBlock(_probes(header, text), opened, tok.pos, last))
                header = []
                continue
        last = tok
    if depth:
        blocks.append(TopBlock(_probes(header, text), opened, None, last))
        header = []
    return blocks, bool(header)


# -- the outline ---------------------------------------------------------------------------------------------
@dataclass
class OutlineBlock:
    probes: tuple[str, ...]
    predicate: str | None
    statements: int  # ';' in the body, nested blocks included
    nested: int  # '{' inside the body (if/else/unroll)
    calls: tuple[str, ...]


@dataclass
class Outline:
    """The structure of a bpftrace script, as far as injection is concerned."""

    blocks: list[OutlineBlock] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)  # every string literal, quotes included
    calls: list[str] = field(default_factory=list)  # every name(...) outside strings and comments
    directives: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def probes(self) -> list[str]:
        return [p for b in self.blocks for p in b.probes]

    @property
    def shape(self) -> list[tuple[tuple[str, ...], int, int]]:
        return [(b.probes, b.statements, b.nested) for b in self.blocks]

    @property
    def ok(self) -> bool:
        return not self.errors


def _skip_trivia(text: str, pos: int, out: Outline) -> int:
    while pos < len(text):
        if text[pos] in " \t\r\n\f\v":
            pos += 1
        elif text.startswith("//", pos):
            nl = text.find("\n", pos)
            pos = len(text) if nl == -1 else nl
        elif text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            if close == -1:
                out.errors.append(f"unterminated comment at offset {pos}")
                return len(text)
            pos = close + 2
        elif text[pos] == "#" and text[text.rfind("\n", 0, pos) + 1:pos].strip() == "":
            nl = text.find("\n", pos)
            nl = len(text) if nl == -1 else nl
            out.directives.append(text[pos:nl])
            pos = nl
        else:
            break
    return pos


def _scan(text: str, pos: int, out: Outline, closer: str) -> tuple[list[Token], int]:
    """Tokens from ``pos`` up to ``closer`` at bracket depth 0 (``/`` ends a predicate, ``}`` a block)."""
    depth = 0
    toks: list[Token] = []
    for tok in iter_tokens(text, pos):
        if tok.kind in ("badstr", "badcomment", "other"):
            out.errors.append(f"bad token {tok.text[:20]!r} at offset {tok.pos}")
        if tok.kind == "str":
            out.strings.append(tok.text)
            if not _GOOD_STRING.match(tok.text):
                out.errors.append(f"malformed string literal {tok.text[:40]!r}")
        if tok.kind == "directive":
            out.directives.append(tok.text)
        if tok.kind == "punct":
            if tok.text == closer and depth == 0:
                return toks, tok.pos + 1
            if tok.text in "([{":
                depth += 1
            elif tok.text in ")]}":
                depth -= 1
                if depth < 0:
                    out.errors.append(f"unbalanced {tok.text!r} at offset {tok.pos}")
                    depth = 0
        toks.append(tok)
    out.errors.append(f"missing {closer!r} at the end")
    return toks, len(text)


def bpftrace_outline(text: str) -> Outline:
    """Probes, predicates, blocks, statements, strings and calls of a bpftrace script."""
    out = Outline()
    pos = _skip_trivia(text, 0, out)
    while pos < len(text):
        probes: list[str] = []
        while True:
            m = _ATTACH.match(text, pos)
            if not m:
                out.errors.append(f"expected a probe at offset {pos}: {text[pos:pos + 30]!r}")
                return out
            probes.append(m.group())
            pos = _skip_trivia(text, m.end(), out)
            if text.startswith(",", pos):
                pos = _skip_trivia(text, pos + 1, out)
                continue
            break
        predicate = None
        if text.startswith("/", pos):
            toks, pos = _scan(text, pos + 1, out, "/")
            predicate = " ".join(t.text for t in toks if t.kind not in ("ws", "comment"))
            out.calls += called_names(toks)
            pos = _skip_trivia(text, pos, out)
        if not text.startswith("{", pos):
            out.errors.append(f"expected '{{' after {', '.join(probes)} at offset {pos}")
            return out
        toks, pos = _scan(text, pos + 1, out, "}")
        calls = called_names(toks)
        out.calls += calls
        out.blocks.append(OutlineBlock(tuple(probes), predicate,
                                       sum(1 for t in toks if t.text == ";" and t.kind == "punct"),
                                       sum(1 for t in toks if t.text == "{" and t.kind == "punct"), tuple(calls)))
        pos = _skip_trivia(text, pos, out)
    return out
