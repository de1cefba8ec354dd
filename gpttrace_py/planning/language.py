"""Which language a request is in, and the English the slot extractors read for it.

The extractors (intent.py, understand.py) read English. A Chinese request is read through its lexicon
(lexicon/zh.json) by a longest match: each known phrase becomes the English it means, process names, paths,
numbers and English words pass through as written, and every run of Chinese the lexicon does not know is kept
as an unknown word, reported, never dropped. A longest match over the lexicon rather than a segmenter (jieba):
no dictionary to load (jieba's costs ~0.5-1 s at start-up, far over the 30 ms planning budget), and a
segmenter's words would still need this lexicon to mean anything to the planner.

Requests in a language the planner does not read at all (French, Spanish...) are recognised by their function
words and refused with that reason rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import UnmappableIntent
from . import lexicon as lexicon_mod

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ASCII_RUN = re.compile(r"[A-Za-z0-9_./:+\-'\"=<>@%~*$]+")
_PUNCT = {"，": ",", "。": ".", "？": "?", "！": "!", "、": ",", "：": ":", "；": ";", "“": '"', "”": '"',
          "‘": "'", "’": "'", "（": "(", "）": ")", "《": '"', "》": '"', "　": " "}


@dataclass
class Reading:
    """A request as the planner reads it."""

    text: str  # what the extractors read (English)
    language: str  # 'en', 'zh'
    unknown: list[str] = field(default_factory=list)  # runs of the request its lexicon does not know


def detect(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def read(request: str) -> Reading:
    """The request in the words the extractors read; refused when it is not text or its language is one the
    planner cannot read."""
    from .intent import checked_text

    checked_text(request)
    language = detect(request)
    if language == "zh":
        return _through_lexicon(request, lexicon_mod.load("zh"))
    foreign = _foreign_language(request)
    if foreign is not None:
        raise UnmappableIntent(lexicon_mod.load("en").say("foreign", language=foreign), [])
    return Reading(request, "en")


@lru_cache(maxsize=4)
def _longest(language: str) -> int:
    return max((len(k) for k in lexicon_mod.load(language).terms), default=1)


def _through_lexicon(request: str, lex: lexicon_mod.Lexicon) -> Reading:
    terms = lex.terms
    particles = lex.particles
    longest = _longest(lex.language)
    out: list[str] = []
    unknown: list[str] = []
    pending = ""  # a run of characters the lexicon does not know
    grouping: list[str] = []  # "by process", "per cpu": said last, as English does
    after_name = False  # the last thing read was a name as written (ASCII), right before this

    def flush() -> None:
        nonlocal pending
        if pending.strip():
            unknown.append(pending.strip())
            out.append(f"\u2047{len(unknown) - 1}")  # a place holder the extractors skip
        pending = ""

    i, n = 0, len(request)
    while i < n:
        found = next((request[i:i + k] for k in range(min(longest, n - i), 0, -1) if request[i:i + k] in terms), None)
        run = _ASCII_RUN.match(request, i) if found is not None and found.isascii() else None
        if found is not None and not (run is not None and len(run.group(0)) > len(found)):
            flush()
            english = terms[found]
            if found in particles.get("possessive", ()) and after_name and out[-1][:1].isalpha() \
                    and len(out[-1]) <= 15:
                out[-1] += "'s"  # "dd 的 read 调用": dd's read calls
            elif found in particles.get("postposed_exclusion", ()) and after_name and "except" not in out[-3:-1]:
                out.insert(len(out) - 1, "except")  # "sshd 以外的进程": processes other than sshd
            elif english.startswith(("by ", "per ")) and english != "per second":
                grouping.append(english)  # "按进程统计...": English says how to group at the end
            elif english:
                out.append(english)
            elif found in particles.get("agent_before_name", ()) and _ASCII_RUN.match(request,
                                                                                      _skip_spaces(request, i + 1)):
                out.append("by")  # "被 nginx 打开的文件": opened by nginx (before a verb it only marks the passive)
            after_name = False
            i += len(found)
            continue
        c = request[i]
        m = _ASCII_RUN.match(request, i)
        if m:
            flush()
            out.append(m.group(0))
            after_name = True
            i = m.end()
        elif c.isspace() or c in _PUNCT:
            flush()
            mark = _PUNCT.get(c, " ").strip()
            if mark:
                out.append(mark)
            i += 1
        else:
            pending += c
            i += 1
    flush()
    text = " ".join(out + grouping)
    text = re.sub(r"\s+([,.?!:;)])", r"\1", text)
    return Reading(text, lex.language, unknown)


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _foreign_language(text: str) -> str | None:
    """The language a request is in when it is one the planner does not read: two or more of its function words
    that are no English words, making up a good part of the request."""
    from .retrieval import index, stem

    en = lexicon_mod.load("en")
    words = re.findall(r"[^\W\d_]+", text.lower())
    if len(words) < 3:
        return None
    known = index().idf
    best: tuple[int, str] | None = None
    for language, markers in en.foreign_markers.items():
        hits = [w for w in words if w in markers and w not in en.filler and stem(w) not in known]
        if len(hits) >= 2 and len(hits) * 10 >= len(words) * 3 and (best is None or len(hits) > best[0]):
            best = (len(hits), language)
    return best[1] if best else None
