"""Expressions, map keys and conditions in words, and small text helpers for the sections."""

from __future__ import annotations

import re

from ..spec import units
from .context import Context
from .source import split_logical, split_top, strip_parens

# nanoseconds divided by one of these are in that unit ("1000" -> "microseconds"), from spec/units.py
DIVISOR_UNITS = {str(f): units.TIME_WORDS[u][-1] for u, f in units.NS.items() if f > 1}


def expr(ctx: Context, e: str) -> str:
    e = strip_parens(e.strip())
    if ctx.bt:
        b = ctx.glossary.bt_builtin(e)
        if b and b.noun and re.fullmatch(r"\w+|\$\d+", e):
            return f"{e} ({b.noun})"
        mm = re.fullmatch(r"args(?:->|\.)(\w+)", e)
        if mm:
            return f"the {mm.group(1)} field"
        mm = re.fullmatch(r"str\((.*)\)", e)
        if mm:
            return f"{expr(ctx, split_top(mm.group(1))[0])} as text"
        mm = re.fullmatch(r"(ntop|ksym|usym)\((.*)\)", e)
        if mm:
            what = {"ntop": "as an IP address", "ksym": "as a kernel function name", "usym": "as a function name"}
            return f"{expr(ctx, mm.group(2))} {what[mm.group(1)]}"
        mm = re.fullmatch(r"(@\w*)\[(.*)\]", e)
        if mm:
            return f"{mm.group(1)}'s entry for {keys(ctx, mm.group(2))}"
        mm = re.fullmatch(r"(.+?)\s*/\s*(" + "|".join(DIVISOR_UNITS) + ")", e)
        if mm and re.search(r"nsecs|\$\w+|delta", mm.group(1)):
            unit = DIVISOR_UNITS[mm.group(2)]
            return f"`{e}` (in {unit})"
    return f"`{e}`"


def keys(ctx: Context, key: str | None) -> str:
    if not key:
        return "no key"
    parts = split_top(key)
    return " and ".join(expr(ctx, k) for k in parts)


def cond(ctx: Context, c: str) -> str:
    pieces = []
    for joiner, part in split_logical(c):
        pieces.append((f"{joiner} " if joiner else "") + atom(ctx, part))
    return " ".join(pieces)


def atom(ctx: Context, a: str) -> str:
    a = strip_parens(a)
    if a.startswith("!") and not a.startswith("!="):
        inner = strip_parens(a[1:])
        if re.fullmatch(r"@\w*\[.*\]", inner) or re.fullmatch(r"\w+", inner):
            return f"`{inner}` is zero or missing"
        return f"not ({atom(ctx, inner)})"
    op = _top_comparison(a)
    if op:
        left, sym, right = op
        lw, rw = left.strip(), right.strip()
        prefix = re.fullmatch(r'strncmp\((.+), ("[^"]*"), \d+\)', lw)
        if prefix and rw == "0" and sym in ("==", "!="):
            starts = "starts" if sym == "==" else "does not start"
            return f"{expr(ctx, prefix.group(1))} {starts} with {prefix.group(2)}"
        if sym == "<" and rw == "0" and re.search(r"ret|retval|PT_REGS_RC", lw):
            return f"{expr(ctx, lw)} is negative (the call failed)"
        if rw in ("0", "NULL") and sym in ("==", "!=") and not ctx.bt:
            return f"`{lw}` is {'NULL/zero' if sym == '==' else 'set (not NULL/zero)'}"
        if "%" in rw and not ctx.bt:
            rw_desc = f"`{rw}` (a value the Python code fills in)"
        else:
            rw_desc = expr(ctx, rw) if not re.fullmatch(r"-?\d+|\"[^\"]*\"|0x[0-9a-fA-F]+", rw) else rw
        word = {
            "==": "is",
            "!=": "is not",
            "<": "is less than",
            "<=": "is at most",
            ">": "is more than",
            ">=": "is at least",
        }[sym]
        return f"{expr(ctx, lw)} {word} {rw_desc}"
    if ctx.bt and re.fullmatch(r"@\w*\[.*\]", a):
        mm = re.fullmatch(r"(@\w*)\[(.*)\]", a)
        assert mm is not None
        return (
            f"{mm.group(1)} has an entry for {keys(ctx, mm.group(2))} (saved earlier by another probe, so "
            "the start of this operation was seen)"
        )
    if re.fullmatch(r"\$\w+", a):
        return f"{a} is not zero"
    return f"`{a}` is true (non-zero)"


def _top_comparison(a: str) -> tuple[str, str, str] | None:
    depth = 0
    i = 0
    while i < len(a):
        ch = a[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0:
            for op in ("==", "!=", "<=", ">=", "<", ">"):
                if a.startswith(op, i):
                    if op in ("<", ">") and (a[i + 1 : i + 2] in ("<", ">", "=") or a[i - 1 : i] in ("<", ">", "-")):
                        break
                    return a[:i], op, a[i + len(op) :]
        i += 1
    return None


def short(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".")


def lower_first(s: str) -> str:
    return s[:1].lower() + s[1:] if s and not s[:2].isupper() else s
