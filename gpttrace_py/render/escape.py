"""The only ways a value reaches program text.

Templates receive ``Code`` values (text produced by the expression compiler or by one of the escapers
below) and plain ints. The Jinja environment refuses anything else at render time, so a template that
pastes a raw string fails loudly instead of producing an injectable program.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..spec.expr import IDENT_RE
from .program import COLUMN_SEP, NAME_MARK

if TYPE_CHECKING:
    import jinja2


class Code(str):
    """Program text that has passed an escaper or the expression compiler."""

    __slots__ = ()


class RawTextInTemplate(TypeError):
    pass


def ident(value: str) -> Code:
    if not isinstance(value, str) or not IDENT_RE.match(value):
        raise ValueError(f"not an identifier: {value!r}")
    return Code(value)


def integer(value: int) -> Code:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return Code(str(value))


def _printable(value: str, limit: int) -> str:
    text = value.encode("utf-8", "replace").decode("utf-8")[:limit]
    return "".join(c if " " <= c <= "~" else "?" for c in text)


_LITERAL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def string_literal(value: str, limit: int = 200, marks: bool = False) -> Code:
    """A double-quoted literal valid in bpftrace, C and Python: printable ASCII; backslash, quote, newline
    and tab escaped; any other character becomes '?' (NAME_MARK and COLUMN_SEP too, unless ``marks``: the
    renderer's own format strings)."""
    text = value.encode("utf-8", "replace").decode("utf-8")[:limit]
    escapes = {**_LITERAL_ESCAPES, NAME_MARK: "\\x1e", COLUMN_SEP: "\\x1f"} if marks else _LITERAL_ESCAPES
    out = "".join(escapes.get(c, c if " " <= c <= "~" else "?") for c in text)
    return Code(f'"{out}"')


def comment(value: str, limit: int = 200) -> Code:
    """Text safe inside a // or # comment line and inside /* */ (no newline, no */)."""
    return Code(_printable(value, limit).replace("*/", "* /"))


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Code) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise RawTextInTemplate(f"template tried to insert an unescaped {type(value).__name__}: {str(value)[:60]!r}")


@lru_cache(maxsize=2)
def environment(backend: str) -> jinja2.Environment:
    import jinja2

    from ..paths import data_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates") / backend)),
        bytecode_cache=_bytecode_cache(jinja2),
        autoescape=False,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["str"] = string_literal
    env.filters["ident"] = ident
    env.filters["int"] = integer
    env.filters["comment"] = comment
    return env


def _bytecode_cache(jinja2: Any) -> Any:
    """The compiled templates, kept in gpttrace's cache directory (compiling them was a third of the time to
    render a program in a fresh process). Their files are code that Jinja unpickles, so they are read and
    written only through safefs: a directory whose whole path is root's (or this user's) and writable by
    nobody else, held open by descriptor, and files in it that are not symlinks and belong to root or this
    user. ``GPTTRACE_TEMPLATE_CACHE=0`` turns it off."""
    if os.environ.get("GPTTRACE_TEMPLATE_CACHE", "1").lower() in ("0", "no", "off", "false"):
        return None
    from .. import safefs
    from ..paths import cache_dir

    class TrustedBytecodeCache(jinja2.BytecodeCache):  # type: ignore[misc]
        def __init__(self, path: Any) -> None:
            self.path = path
            self.dir: safefs.TrustedDir | None = None
            self.tried = False

        def _dir(self) -> safefs.TrustedDir | None:
            if not self.tried:
                self.tried = True
                self.dir = safefs.trusted(self.path, create=True)
            return self.dir

        def load_bytecode(self, bucket: Any) -> None:
            d = self._dir()
            data = d.get_bytes(f"__jinja2_{bucket.key}.cache") if d is not None else None
            if data:
                bucket.bytecode_from_string(data)

        def dump_bytecode(self, bucket: Any) -> None:
            d = self._dir()
            if d is not None:
                try:
                    d.write_bytes(f"__jinja2_{bucket.key}.cache", bucket.bytecode_to_string())
                except OSError:
                    pass

    return TrustedBytecodeCache(cache_dir() / "templates")


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_]+")


def slug(value: str, default: str = "x") -> str:
    """An identifier made from free text (for map and variable names)."""
    s = _SAFE_NAME.sub("_", value).strip("_").lower()[:40]
    if not s or s[0].isdigit():
        s = f"{default}_{s}" if s else default
    return s
