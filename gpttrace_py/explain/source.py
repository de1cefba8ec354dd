"""Source text helpers shared by the bpftrace and C scanners: blanking comments and strings while keeping
every offset (so line numbers and slices stay right), balanced brackets, top-level comma splits."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field


@dataclass
class Source:
    """One text in three views with identical offsets.

    ``code``: comments, strings and preprocessor lines blanked (spaces; newlines kept) — for scanning.
    ``display``: comments and preprocessor lines blanked, strings kept — for quoting expressions.
    ``text``: the original.
    """

    text: str
    code: str
    display: str
    strings: dict[int, str] = field(default_factory=dict)  # offset of the opening quote -> literal with quotes
    preprocessor: list[tuple[int, str]] = field(default_factory=list)  # (line, text) of #include/#define/...
    line_offset: int = 0  # added to every line number (a C text embedded at some line of a Python file)
    line_map: list[int] | None = None  # line of the text -> line of the file, when pieces were joined
    _starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._starts = [0] + [m.end() for m in re.finditer(r"\n", self.text)]

    def line(self, offset: int) -> int:
        n = bisect.bisect_right(self._starts, offset)
        if self.line_map and 0 < n <= len(self.line_map):
            return self.line_map[n - 1]
        return n + self.line_offset

    def string_at(self, offset: int) -> str | None:
        return self.strings.get(offset)

    def show(self, start: int, end: int) -> str:
        """The display text of a range on one line, whitespace collapsed."""
        return " ".join(self.display[start:end].split())


def scan(text: str, hash_comments: bool = False) -> Source:
    """Blank comments, strings and preprocessor lines. ``#`` starts a preprocessor line when it is the
    first non-blank character of a line (``#include``, ``#define``, shebang)."""
    n = len(text)
    code = list(text)
    display = list(text)
    strings: dict[int, str] = {}
    prep: list[tuple[int, str]] = []
    i = 0
    line = 1
    at_line_start = True

    def blank(a: int, b: int, both: bool = True) -> None:
        for k in range(a, b):
            if text[k] != "\n":
                code[k] = " "
                if both:
                    display[k] = " "

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            at_line_start = True
            i += 1
            continue
        if at_line_start and c in " \t":
            i += 1
            continue
        if at_line_start and c == "#":
            # a preprocessor line, with backslash continuations
            j = i
            while True:
                end = text.find("\n", j)
                if end == -1:
                    end = n
                    break
                if text[end - 1 : end] == "\\":
                    j = end + 1
                    continue
                break
            prep.append((line, text[i:end]))
            blank(i, end)
            line += text.count("\n", i, end)
            i = end
            continue
        at_line_start = False
        if text.startswith("//", i) or (hash_comments and c == "#"):
            end = text.find("\n", i)
            end = n if end == -1 else end
            blank(i, end)
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            line += text.count("\n", i, end)
            blank(i, end)
            i = end
            continue
        if c == '"' or (c == "'" and _char_literal(text, i)):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            end = min(j + 1, n)
            strings[i] = text[i:end]
            blank(i + 1, end - 1, both=False)
            i = end
            continue
        i += 1
    return Source(text, "".join(code), "".join(display), strings, prep)


def _char_literal(text: str, i: int) -> bool:
    return bool(re.match(r"'(?:\\.|[^'\\\n])'", text[i : i + 4]))


CLOSE = {"(": ")", "[": "]", "{": "}"}


def match_bracket(code: str, i: int) -> int:
    """Index of the bracket closing the one at ``i`` (or len(code) when unbalanced)."""
    opener = code[i]
    closer = CLOSE[opener]
    depth = 0
    for j in range(i, len(code)):
        ch = code[j]
        if ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return j
    return len(code)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets (strings must already be blanked or simple)."""
    parts: list[str] = []
    cur: list[str] = []
    depth, in_str = 0, False
    for ch in text:
        if ch == '"':
            in_str = not in_str
        if not in_str:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif ch == sep and depth == 0:
                parts.append("".join(cur))
                cur = []
                continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def split_top_ranges(code: str, start: int, end: int, sep: str = ",") -> list[tuple[int, int]]:
    """Like split_top on code[start:end], but (start, end) offsets of each part, trimmed."""
    out: list[tuple[int, int]] = []
    depth = 0
    a = start
    for j in range(start, end):
        ch = code[j]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append(_trim(code, a, j))
            a = j + 1
    out.append(_trim(code, a, end))
    return [r for r in out if r[1] > r[0]]


def _trim(code: str, a: int, b: int) -> tuple[int, int]:
    while a < b and code[a].isspace():
        a += 1
    while b > a and code[b - 1].isspace():
        b -= 1
    return a, b


def strip_parens(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")") and match_bracket(expr, 0) == len(expr) - 1:
        expr = expr[1:-1].strip()
    return expr


def split_logical(expr: str) -> list[tuple[str, str]]:
    """Split a condition at top-level && and ||: [('', first), ('and', second), ('or', third), ...]."""
    expr = strip_parens(expr)
    out: list[tuple[str, str]] = []
    depth = 0
    cur: list[str] = []
    joiner = ""
    i = 0
    in_str = False
    while i < len(expr):
        ch = expr[i]
        if ch == '"':
            in_str = not in_str
        if not in_str:
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif depth == 0 and expr.startswith(("&&", "||"), i):
                out.append((joiner, "".join(cur).strip()))
                joiner = "and" if expr[i] == "&" else "or"
                cur = []
                i += 2
                continue
        cur.append(ch)
        i += 1
    out.append((joiner, "".join(cur).strip()))
    return [(j, p) for j, p in out if p]


def skip_space(code: str, i: int) -> int:
    while i < len(code) and code[i].isspace():
        i += 1
    return i


def prev_nonspace(code: str, i: int) -> int:
    """Index of the last non-space character before ``i`` (or -1)."""
    i -= 1
    while i >= 0 and code[i].isspace():
        i -= 1
    return i


def enclosing_call(code: str, pos: int, lo: int) -> tuple[str, int] | None:
    """The function whose argument list contains ``pos``: (name, offset of its '('), or None."""
    depth = 0
    i = pos - 1
    while i >= lo:
        ch = code[i]
        if ch in ")]":
            depth += 1
        elif ch == "[":
            if depth == 0:
                return None
            depth -= 1
        elif ch == "(":
            if depth == 0:
                j = prev_nonspace(code, i)
                m = re.search(r"([A-Za-z_]\w*)$", code[max(lo, j - 63) : j + 1])
                return (m.group(1), i) if m else None
            depth -= 1
        elif ch in ";{}" and depth == 0:
            return None
        i -= 1
    return None


def statement_end(code: str, i: int) -> int:
    """End of the statement starting at ``i``: the next ';' or unmatched '}' outside brackets."""
    depth = 0
    j = i
    while j < len(code):
        ch = code[j]
        if ch in "([{":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "}":
            if depth == 0:
                return j
            depth -= 1
        elif ch == ";" and depth == 0:
            return j
        j += 1
    return j


_HEAD = re.compile(r"(else\s+if|if|while|for|switch|unroll|else|do)\b")


def statements(src: Source, start: int, end: int, depth: int = 0) -> list:
    """The statements of a block, nested blocks flattened with a depth (if/else/while/for heads kept)."""
    from .model import Statement

    code = src.code
    out: list[Statement] = []
    i = start
    while i < end:
        i = skip_space(code, i)
        if i >= end:
            break
        if code[i] in ";}":
            i += 1
            continue
        head = _HEAD.match(code, i, end)
        if head:
            word = "else if" if head.group(1).startswith("else") and head.group(1) != "else" else head.group(1)
            k = skip_space(code, head.end())
            cond = None
            if k < end and code[k] == "(":
                close = match_bracket(code, k)
                cond = src.show(k + 1, close)
                k = skip_space(code, close + 1)
            out.append(Statement(src.line(i), f"{word} ({cond})" if cond is not None else word, depth))
            if k < end and code[k] == "{":
                close = match_bracket(code, k)
                out.extend(statements(src, k + 1, close, depth + 1))
                i = close + 1
            else:
                stop = statement_end(code, k)
                if stop > k:
                    out.append(Statement(src.line(k), src.show(k, stop), depth + 1))
                i = stop + 1
            continue
        if code[i] == "{":
            close = match_bracket(code, i)
            out.extend(statements(src, i + 1, close, depth + 1))
            i = close + 1
            continue
        stop = statement_end(code, i)
        text = src.show(i, stop)
        if text:
            out.append(Statement(src.line(i), text, depth))
        i = stop + 1
    return out
