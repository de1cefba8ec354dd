"""Ground a request's words in this kernel's tracepoint catalog: "TLB flushes by reason" → tlb:tlb_flush and its
``reason`` field; "page allocation orders" → kmem:mm_page_alloc and ``order``.

Tracepoint categories, event names and field names are vocabulary: a request word matches a piece of a name
by its stem, a shared beginning of four letters or more ("allocation"/alloc, "temperature"/temp), or a way
people say it (lexicon ``tracepoint_words``: "fsync" → sync_file, "arp" → neigh). The best-matching
tracepoints become programs of the asked shape, with the asked fields as columns, keys or values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import lexicon as lexicon_mod
from .retrieval import stem

if TYPE_CHECKING:
    from ..kernel.catalog import Catalog
    from ..kernel.tracefs import TpField, Tracepoint
    from .intent import Intent

SKIP_CATEGORIES = {"raw_syscalls", "ftrace", "header_event", "header_page", "enable"}
SYSCALL_PIECES = {"sys", "enter"}  # syscalls:sys_enter_X: only X says what the call is
GROUP_PHRASE = re.compile(r"\b(?:by|per|for each|grouped by|broken down by|keyed by)\s+(?:the\s+|its\s+|their\s+)?"
                          r"((?:[a-z0-9_]+\s+){0,2}[a-z0-9_]+)")


@dataclass
class Match:
    tracepoint: Tracepoint
    score: float
    words: set[str]  # request words the name and fields matched
    fields: list[TpField]  # fields the request asks about, best first
    key_fields: list[TpField]  # fields it groups by ("by reason", "per NUMA node")


def _pieces(name: str) -> list[str]:
    return [p for p in re.split(r"[_\-]+", name.lower().removeprefix("sys_enter_")) if p]


def closeness(word: str, piece: str, lex: lexicon_mod.Lexicon) -> float:
    """How surely a request word names this piece of a tracepoint or field name: 1 for the same word (or
    stem), 0.8 for a shared beginning or a way of saying it, 0 for none."""
    return word_forms(word, lex.language).closeness(piece)


def word_matches(word: str, piece: str, lex: lexicon_mod.Lexicon) -> bool:
    return closeness(word, piece, lex) > 0


def _bare(word: str) -> frozenset[str]:
    """A word without its inflection, as names write it: "added" add, "stopped" stop, "merges" merge."""
    for end in ("ing", "ed", "es", "s"):
        if word.endswith(end) and len(word) - len(end) >= 3:
            base = word[: -len(end)]
            if end in ("ing", "ed") and base[-1] == base[-2]:
                return frozenset({base, base[:-1]})  # "added" add, "stopped" stop
            return frozenset({base, base + "e"}) if end in ("ing", "ed") else frozenset({base})
    return frozenset({word})


class WordForms:
    """A request word, ready to be compared with many name pieces."""

    def __init__(self, word: str, lex: lexicon_mod.Lexicon) -> None:
        self.word = word
        self.stem = stem(word)
        self.bare = _bare(word)
        said = lex.tracepoint_words.get(word, ())
        self.exact = {s for s in said}
        self.prefixes = tuple(s for s in said if len(s) >= 3 and "_" not in s)
        self.phrases = tuple(s for s in said if "_" in s) + ((word,) if "_" in word else ())

    def closeness(self, piece: str, piece_stem: str | None = None) -> float:
        w = self.word
        if w == piece or piece in self.bare or (w[:2] == piece[:2] and self.stem == (piece_stem or _stem(piece))):
            return 1.0
        if len(w) >= 4 and len(piece) >= 4 and (w.startswith(piece) or piece.startswith(w)):
            return 0.8
        if piece in self.exact or (self.prefixes and piece.startswith(self.prefixes)):
            return 0.8
        if any(len(b) >= 4 and len(piece) > len(b) and piece.endswith(b) for b in self.bare):
            return 0.7  # the end of a compound: "merges" in backmerge, "timers" in alarmtimer
        return 0.0

    def name_closeness(self, name: str, pieces: tuple[tuple[str, None], ...]) -> float:
        for phrase in self.phrases:  # "io_uring", "sync_file": a piece of the name as it is written
            if re.search(rf"(?:^|_){re.escape(phrase)}(?:_|$)", name):
                return 1.0 if phrase == self.word else 0.9
        return max((self.closeness(p, ps) for p, ps in pieces), default=0.0)


@lru_cache(maxsize=8192)
def _stem(piece: str) -> str:
    return stem(piece)


@lru_cache(maxsize=8192)
def _stemmed(name: str) -> tuple[tuple[str, None], ...]:
    """The pieces of a name (their stems are taken only when a word could share one: most never are)."""
    return tuple((p, None) for p in _pieces(name))


@dataclass
class _PieceIndex:
    events: dict[str, list[tuple[str, str]]]  # piece → the (category, event) whose event name has it
    by_start: dict[str, list[str]]  # first two letters → pieces
    by_end: dict[str, list[str]]  # last 4 to 8 letters → pieces (the ends of compounds)

    def candidates(self, w: WordForms) -> set[str]:
        """The pieces a word can be close to: those that share its first letters (or a phrasing's), or end
        with it; the rest cannot match (see WordForms.closeness)."""
        out = set(self.by_start.get(w.word[:2], ()))
        for said in (*w.exact, *w.prefixes):
            out.update(self.by_start.get(said[:2], ()))
        for b in w.bare:
            out.update(self.by_end.get(b, ()))
        return out


@lru_cache(maxsize=4)
def _piece_index(names: tuple[tuple[str, str], ...]) -> _PieceIndex:
    events: dict[str, list[tuple[str, str]]] = {}
    for cat, name in names:
        for p, _ in _stemmed(name):
            events.setdefault(p, []).append((cat, name))
    by_start: dict[str, list[str]] = {}
    by_end: dict[str, list[str]] = {}
    for p in events:
        by_start.setdefault(p[:2], []).append(p)
        for n in range(4, min(8, len(p) - 1) + 1):
            by_end.setdefault(p[-n:], []).append(p)
    return _PieceIndex(events, by_start, by_end)


@lru_cache(maxsize=512)
def word_forms(word: str, language: str = "en") -> WordForms:
    return WordForms(word, lexicon_mod.load(language))


def match(words: list[str], it: Intent, catalog: Catalog, limit: int = 3) -> list[Match]:
    """The tracepoints whose names the request's content words match best, with the fields it asks about."""
    lex = lexicon_mod.load()
    if not words:
        return []
    cats = catalog.tracepoints.categories()
    names = tuple(sorted((c, n) for c, ns in cats.items() if c not in SKIP_CATEGORIES for n in ns
                         if c != "syscalls" or n.startswith("sys_enter_")))
    index = _piece_index(names)
    ws = [word_forms(w) for w in words]
    # each word's closeness to each event it names (by a piece, or by a phrase written with underscores)
    close: dict[tuple[str, str], dict[str, float]] = {}
    for w in ws:
        for piece in index.candidates(w):
            c = w.closeness(piece)
            if c:
                for ev in index.events[piece]:
                    got = close.setdefault(ev, {})
                    got[w.word] = max(got.get(w.word, 0.0), c)
        for phrase in w.phrases:
            for ev in names:
                if phrase in ev[1] and re.search(rf"(?:^|_){re.escape(phrase)}(?:_|$)", ev[1]):
                    got = close.setdefault(ev, {})
                    got[w.word] = max(got.get(w.word, 0.0), 1.0 if phrase == w.word else 0.9)
    cat_close = {c: {w.word: v for w in ws if c != "syscalls" and (v := w.name_closeness(c, _stemmed(c)))}
                 for c in cats}
    scored: list[tuple[float, str, str, set[str]]] = []
    for (cat, name), by_word in close.items():
        on_cat = cat_close.get(cat, {})
        hit = set(by_word) | set(on_cat)
        cat_pieces = set(_pieces(cat))
        own = {w.word for w in ws for p, ps in _stemmed(name) if p not in cat_pieces and w.closeness(p, ps)}
        own |= set(by_word) - set(on_cat)
        extra = sum(1 for p, ps in _stemmed(name) if p not in cat_pieces and p not in SYSCALL_PIECES
                    and not any(w.closeness(p, ps) for w in ws))
        score = sum(max(by_word.get(w, 0.0), on_cat.get(w, 0.0)) for w in hit) - 0.05 * extra
        if not own and len(cats.get(cat, ())) > 1:
            score -= 0.5  # the category alone says little ("ext4" names a hundred events): its plainest event
        score -= 0.2 if name.endswith(("_exit", "_end", "_return")) else 0
        scored.append((score, cat, name, hit))
    scored.sort(key=lambda s: (-s[0], s[2]))
    out: list[Match] = []
    groups = _group_words(it)
    for score, cat, name, hit in scored[: limit * 12]:
        tp = catalog.tracepoints.get(cat, name)
        if tp is None:
            continue
        fields, matched = _asked_fields(tp, words, lex)
        keys = [f for g in groups if (f := _field_grouped_by(tp, g, lex)) is not None]
        said_category = bool(cat_close.get(cat))
        if not said_category and len(hit | matched) < 2:
            continue  # one word of a name in a category the request does not name ("queries": xfs btree queries)
        out.append(Match(tp, score + 0.9 * len(matched - hit), hit | matched, fields, keys))
    out.sort(key=lambda m: (-m.score, m.tracepoint.name))
    return out[:limit]


def _field_grouped_by(tp: Tracepoint, phrase: str, lex: lexicon_mod.Lexicon) -> TpField | None:
    """The field a "by ..." phrase names: every piece of its name said ("destination cgroup path": dst_path),
    the one with the most pieces when several are."""
    words = phrase.split()
    best: tuple[int, TpField] | None = None
    for f in tp.user_fields:
        pieces = _pieces(f.name)
        said = all(any(word_matches(w, p, lex) for w in words) for p in pieces)
        if said and (best is None or len(pieces) > best[0]):
            best = (len(pieces), f)
    return best[1] if best else None


def _asked_fields(tp: Tracepoint, words: list[str], lex: lexicon_mod.Lexicon) -> tuple[list[TpField], set[str]]:
    """The fields whose names the words say (every piece of "dst_path" said: "destination ... path"), best first."""
    found: list[tuple[int, TpField, set[str]]] = []
    for f in tp.user_fields:
        pieces = _pieces(f.name)
        said = {w for w in words if any(word_matches(w, p, lex) for p in pieces) or word_matches(w, f.name, lex)}
        covered = [p for p in pieces if any(word_matches(w, p, lex) for w in words)]
        if said and (len(covered) == len(pieces) or len(pieces) == 1 or f.name in said):
            found.append((len(covered), f, said))
    found.sort(key=lambda x: -x[0])
    matched: set[str] = set()
    for _, _, said in found:
        matched |= said
    return [f for _, f, _ in found], matched


def _group_words(it: Intent) -> list[str]:
    return [m.group(1) for m in GROUP_PHRASE.finditer(it.text)]


def spec_for(m: Match, it: Intent) -> dict[str, Any]:
    """A program of the asked shape on the matched tracepoint (the spec's JSON form)."""
    from .grouping import GROUP_KEYS, group_keys
    from .shapes import intent_shape

    tp = m.tracepoint
    base: dict[str, Any] = {
        "rationale": f"the {tp.category}:{tp.name} tracepoint fires on this event; its fields are read from this "
                     "kernel's format file",
        "probes": [tp.probe],
    }
    shape = intent_shape(it)
    numeric = [f for f in m.fields if f.kind == "int"]
    keys = [_column(f) for f in m.key_fields][:3]
    if shape == "hist" and numeric:
        value = next((f for f in numeric if f not in m.key_fields), numeric[0])
        return {**base, "title": f"{tp.name} {value.name} distribution",
                "aggregates": [{"func": "hist", "value": f"args.{value.name}", "keys": keys}]}
    if shape in ("sum", "stat") and numeric:
        value = next((f for f in numeric if f not in m.key_fields), numeric[0])
        func = "sum" if shape == "sum" else next((f for f in ("avg", "max", "min") if f in it.actions), "avg")
        return {**base, "title": f"{tp.name} {value.name} ({func})",
                "aggregates": [{"func": func, "value": f"args.{value.name}", "keys": keys or group_keys(it)}]}
    if shape in ("count", "hist") or keys:
        by = keys + [k for k in group_keys(it) if k["label"] not in {x["label"] for x in keys}]
        by = by[:4] or GROUP_KEYS["comm"]
        return {**base, "title": f"{tp.name} events by {', '.join(k['label'].lower() for k in by)}",
                "aggregates": [{"func": "count", "keys": by}]}
    cols: list[dict[str, Any]] = [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"}]
    shown = [f for f in m.fields if _printable(f)]
    rest = [f for f in tp.user_fields if f not in shown and _printable(f) and f.kind != "ptr"]
    for f in (shown + rest)[:7]:
        cols.append(_column(f))
    return {**base, "title": f"{tp.category}:{tp.name} events", "print": cols}


def _printable(f: TpField) -> bool:
    """A field a column can show: not an array of numbers, nor bytes that are no text (a MAC address)."""
    return f.kind != "array" and not (f.array and "unsigned" in f.ctype)


def _column(f: TpField) -> dict[str, Any]:
    col: dict[str, Any] = {"expr": f"args.{f.name}", "label": f.name.upper()[:40]}
    if f.kind == "ptr":
        col["format"] = "hex"
    return col
