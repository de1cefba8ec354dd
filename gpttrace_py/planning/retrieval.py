"""BM25 ranking of corpus entries for an intent: no network, no model, a few milliseconds."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from ..corpus import Example
from .vocabulary import STOP_WORDS, SYNONYMS

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = STOP_WORDS


# Words about the shape of the answer rather than its subject: matching only these is not a match.
_GENERIC_WORDS = (
    "count",
    "number",
    "process",
    "name",
    "program",
    "histogram",
    "distribution",
    "total",
    "pid",
    "comm",
    "time",
    "start",
    "line",
    "event",
    "call",
    "new",
    "system",
    "wide",
    "everything",
    "latency",
    "size",
    "byte",
    "per",
    "second",
    "top",
    "most",
    "rate",
    "often",
    "much",
    "many",
    "which",
    "who",
    "thread",
    "cpu",
    "user",
    "kernel",
    "stack",
    "sum",
    "average",
    "avg",
    "max",
    "min",
    "show",
    "trace",
    "print",
    "hz",
    "ms",
    "us",
    "ns",
    "arg",
    "argument",
    "return",
    "value",
    "result",
    "error",
    "fail",
    "path",
    "file",
    "id",
    "task",
    "command",
    "sample",
    "distribut",
    "happen",
    "each",
    "every",
    "all",
    "one",
    "activity",
    "tool",
    "snoop",
    "watch",
)


SYNONYM_WEIGHT = 0.5


def stem(word: str) -> str:
    """A light stemmer, the same for queries and examples (Porter's steps 1a, 1b and 5a): renames, renamed,
    renaming, rename -> renam; makes, making -> make; files, file -> file; processes -> process; dropped ->
    drop. "state" stays apart from "stat"."""
    found = _STEMS.get(word)
    if found is None:
        found = _STEMS[word] = _stem(word)
    return found


_STEMS: dict[str, str] = {}


def _stem(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not (suffix == "s" and word.endswith("ss")):
            word = word[: -len(suffix)] + repl
            if suffix in ("ing", "ed"):
                if word.endswith(("at", "bl", "iz")):
                    word += "e"  # created -> create
                elif word[-1] == word[-2] and _consonant(word, len(word) - 1) and word[-1] not in "lsz":
                    word = word[:-1]  # dropped -> drop
                elif _measure(word) == 1 and _cvc(word):
                    word += "e"  # making -> make
            break
    if word.endswith("e") and len(word) > 3:
        m = _measure(word[:-1])
        if m > 1 or (m == 1 and not _cvc(word[:-1])):
            word = word[:-1]  # delete, deleted -> delet
    return word


def _consonant(word: str, i: int) -> bool:
    c = word[i]
    if c in "aeiou":
        return False
    return c != "y" or i == 0 or not _consonant(word, i - 1)


def _measure(word: str) -> int:
    """How many vowel-consonant runs: tr 0, make 1, open 2."""
    m, vowel = 0, False
    for i in range(len(word)):
        if _consonant(word, i):
            m += vowel
            vowel = False
        else:
            vowel = True
    return m


def _cvc(word: str) -> bool:
    """Ends consonant-vowel-consonant, the last not w, x or y (mak, clos, stat)."""
    n = len(word)
    return (n >= 3 and _consonant(word, n - 3) and not _consonant(word, n - 2) and _consonant(word, n - 1)
            and word[-1] not in "wxy")


GENERIC = {stem(w) for w in _GENERIC_WORDS}


def tokens(text: str, expand: bool = False) -> list[str]:
    out: list[str] = []
    low = re.sub(r"\bsystem[ -]calls?\b", "syscall", text.lower())
    low = re.sub(r"\bfile[ -]descriptors?\b", "fd", low)
    for w in _TOKEN.findall(low.replace("_", " ")):
        if w in _STOP:
            continue
        out.append(stem(w))
        if expand and w in SYNONYMS:
            out.extend(stem(s) for s in SYNONYMS[w])
    return out


@dataclass
class Hit:
    example: Example
    score: float
    matched: frozenset[str] = frozenset()


class Index:
    def __init__(self, examples: tuple[Example, ...], k1: float = 1.4, b: float = 0.6) -> None:
        self.examples = examples
        self.k1, self.b = k1, b
        self.docs = [Counter(tokens(e.search_text())) for e in examples]
        # Titles and tags weigh more than paraphrases: count them twice.
        for doc, e in zip(self.docs, examples):
            doc.update(tokens(e.title + " " + " ".join(e.tags) + " " + e.id.replace("-", " ")))
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(set(d))
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.min_idf = min(self.idf.values(), default=1.0)  # the commonest term's

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        q = tokens(query, expand=True)
        if not q:
            return []
        qc = Counter(q)
        said = set(tokens(query))  # a synonym the query did not say counts half
        scored: list[Hit] = []
        for e, doc, length in zip(self.examples, self.docs, self.lengths):
            s = 0.0
            matched = set()
            for t, qn in qc.items():
                f = doc.get(t)
                if not f:
                    continue
                matched.add(t)
                idf = self.idf.get(t, 0.0)
                s += (
                    idf
                    * (f * (self.k1 + 1))
                    / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
                    * (1 + 0.3 * (qn - 1))
                    * (1.0 if t in said else SYNONYM_WEIGHT)
                )
            if s > 0:
                scored.append(Hit(e, s, frozenset(matched)))
        scored.sort(key=lambda h: -h.score)
        return scored[:limit]

    def topic_terms(self, query: str) -> set[str]:
        """The query's words that say what to trace (not how to show it)."""
        return {t for t in tokens(query, expand=True) if t not in GENERIC}

    def known_terms(self, query: str) -> int:
        """How many of the query's words the corpus knows at all (0 means gibberish to us)."""
        return sum(1 for t in set(tokens(query, expand=True)) if t in self.idf)


_INDEX: Index | None = None


def index() -> Index:
    global _INDEX
    if _INDEX is None:
        from ..corpus import load

        _INDEX = Index(load())
    return _INDEX
