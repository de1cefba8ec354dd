"""The one bpftrace lexer (gpttrace_py/lang/bpftrace_lexer.py): it never fails, its tokens are the text, and it
reads names, numbers, strings and comments as bpftrace 0.17 does."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from gpttrace_py.lang.bpftrace_lexer import bpftrace_tokens, called_names, iter_tokens, top_level_blocks


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab1_@$#"\'/*\\{}();:,. \n\t\u00e9\u00a0')) | st.characters(),
               max_size=60))
def test_any_text_lexes_into_tokens_that_are_the_text(text: str) -> None:
    tokens = bpftrace_tokens(text)
    assert "".join(t.text for t in tokens) == text
    assert all(a.end == b.pos for a, b in itertools.pairwise(tokens))


def test_kinds() -> None:
    text = '#include <x.h>\nk:f /pid == 0x1f/ { @a[$1] = count(); $x = "s\\"}"; // }\n @ = 1; }'
    kinds = [(t.kind, t.text) for t in bpftrace_tokens(text) if t.kind not in ("ws", "punct")]
    assert kinds == [("directive", "#include <x.h>"), ("ident", "k"), ("ident", "f"), ("ident", "pid"),
                     ("num", "0x1f"), ("map", "@a"), ("var", "$1"), ("ident", "count"), ("var", "$x"),
                     ("str", '"s\\"}"'), ("comment", "// }"), ("map", "@"), ("num", "1")]
    assert called_names(bpftrace_tokens(text)) == ["count"]


def test_names_are_read_as_bpftrace_reads_them() -> None:
    """A map or variable name starts with a letter or '_' ($1 is a positional parameter): '@1system(' is the
    map '@', the number 1 and a call of system."""
    assert [t.text for t in bpftrace_tokens("@1system(") if t.kind != "ws"] == ["@", "1", "system", "("]
    assert called_names(bpftrace_tokens('@1system("id")')) == ["system"]
    assert [t.text for t in bpftrace_tokens("$1abc")] == ["$1", "abc"]


def test_a_range_is_lexed_like_the_text_ending_there() -> None:
    text = "abc /def/ { x }"
    assert [t.text for t in iter_tokens(text, 4, 9)] == ["/", "def", "/"]


def test_top_level_blocks() -> None:
    text = ('struct S { int a; };\nBEGIN { if (1) { } }\nuprobe:/bin/sh:main, k:f /pid/ { "}"; }\n'
            "END { clear(@a); }\n// after\n")
    blocks, trailing = top_level_blocks(text)
    assert [b.probes for b in blocks] == [("struct S",), ("BEGIN",), ("uprobe:/bin/sh:main", "k:f"), ("END",)]
    assert not trailing and blocks[-1].close == text.rindex("}") and blocks[-1].last is not None
    assert blocks[-1].last.text == ";"
    blocks, trailing = top_level_blocks("END { } x")
    assert trailing
    blocks, _ = top_level_blocks("BEGIN { ")
    assert blocks[0].close is None
