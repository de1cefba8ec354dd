"""Text from outside gpttrace (traced data, a model server's answers, session logs) made safe for a terminal.

Traced values are data: a file name can hold a newline that would look like a second event, or escape
sequences that move the cursor, rename the terminal window or hide text. ``escape`` is the one function that
prints such text: C0 controls, DEL, C1 controls, and the Unicode characters that reorder or hide text (bidi
embeddings, overrides and isolates, zero-width marks, line and paragraph separators) become visible escapes
such as ``\\x1b``, ``\\n`` or ``\\u202e``. JSON output keeps values exact (json.dumps escapes them itself).
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 (but tab), DEL, C1; bidi marks, embeddings, overrides and isolates; zero-width and separator characters
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _one(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def escape(text: object, keep_newlines: bool = False) -> str:
    """``text`` with every control, C1 and bidi/invisible character shown as an escape (``\\x1b``).

    ``keep_newlines``: newlines (and tabs) stay, for multi-line text whose lines are all shown (a program, an
    explanation); everything else is escaped all the same."""
    s = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE
    return pattern.sub(_one, s) if pattern.search(s) else s
