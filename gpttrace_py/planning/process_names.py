"""Which words of a request are the names of programs to watch: "by nginx", "cat or head", "except systemd",
"what ls is doing", and which are not (a topic, a field, an English word)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from .intent_words import NOT_PROCESS, action_words, ordinary_word
from .vocabulary import KNOWN_PROCESSES, NOT_A_PROCESS, STOP_WORDS

if TYPE_CHECKING:
    from .intent import Intent

SUBJECT_VERBS = ("reads|opens|writes|calls|sends|receives|connects|touches|accesses|executes|runs|spawns|"
                  "allocates|creates|deletes|removes|forks|uses|makes|opened|wrote|sent|received|created|deleted|"
                  "removed|spawned|touched|accessed|executed|allocated")

_NAME = r"[a-z][\w.+:-]*"
_NEGATION = re.compile(
    r"\b(?:(?:but |and )?not (?:by|from|made by|for|of|in|including)|except(?: for| by| from)?|excluding|"
    r"other than|apart from|aside from|ignoring|ignore|skipping|skip|but not|without|"
    r"(?:anything|everything|anyone|all|any process(?:es)?|every process|all processes) but)\s+"
    rf"(?:the\s+)?(?:process(?:es)?\s+|programs?\s+|commands?\s+)?(?:named\s+|called\s+)?({_NAME}"
    rf"(?:\s*(?:,\s*(?:or\s+|and\s+|nor\s+)?|\s+or\s+|\s+and\s+|\s+nor\s+|\s*/\s*){_NAME})*)"
)
_ALTERNATIVE_BEFORE = re.compile(rf"(?<![\w.+:-])({_NAME})(?:\s*,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*/\s*)$")
_ALTERNATIVE = re.compile(rf"\s*(?:,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*/\s*)(?:by\s+)?({_NAME})")


def process_alternatives(it: Intent, low: str, text: str) -> None:
    """Alternatives and exclusions of process names: "by cat or head" keeps both; "not by systemd", "except
    cat", "other than sshd or cron" leave those out (and are no process to keep)."""
    for m in _NEGATION.finditer(low):
        names = [n.rstrip(".:") for n in re.split(r"\s*(?:,|\bor\b|\band\b|\bnor\b|/)\s*", m.group(1)) if n]
        names = [n for n in names if _named_process(n)]
        for n in names:
            name = original_case(text, n)[:15]
            if name not in it.not_comms:
                it.not_comms.append(name)
    if it.comm and it.comm.lower() in {n.lower() for n in it.not_comms}:
        it.comm = None  # "files opened but not by systemd": systemd is what to leave out
    if not it.comm:
        return
    at = re.search(rf"(?<![\w-]){re.escape(it.comm.lower())}(?![\w-])", low)
    if at is None:
        return
    it.comms = [it.comm]
    start = at.start()  # names before it: "cat or head opened" (the order Chinese requests come in)
    while (before := _ALTERNATIVE_BEFORE.search(low, 0, start)) is not None \
            and _named_process(before.group(1).rstrip(".:")):
        name = original_case(text, before.group(1).rstrip(".:"))[:15]
        if name not in it.comms:
            it.comms.insert(0, name)
        start = before.start()
    end = at.end()
    while (after := _ALTERNATIVE.match(low, end)) is not None and _named_process(after.group(1).rstrip(".:")):
        name = original_case(text, after.group(1).rstrip(".:"))[:15]
        if name not in it.comms:
            it.comms.append(name)
        end = after.end()
    if len(it.comms) == 1:
        it.comms = []


def _named_process(name: str) -> bool:
    """Can this word in a list of programs ("cat or head", "except systemd") be a program's name?"""
    if name in KNOWN_PROCESSES:
        return True
    return bool(name) and not name.isdigit() and not ordinary_word(name) and not _tracing_vocabulary(name) \
        and not name.endswith(_ENGLISH_SUFFIXES)



@lru_cache(maxsize=1)
def _negation_words() -> frozenset[str]:
    """The words of the lexicon's exclusions ("except", "other than"...) and of lists: never a program's name."""
    from .lexicon import load

    return frozenset(w for phrase in load().negation for w in phrase.split()) | {"or", "and", "nor", "than"}



def original_case(text: str, lowered: str) -> str:
    m = re.search(re.escape(lowered), text, re.IGNORECASE)
    return m.group(0) if m else lowered


def plausible_quoted(name: str) -> bool:
    return 0 < len(name) <= 15 and "/" not in name and not name.strip().count(" ") > 1


_ACTOR_NOUNS = ("process", "program", "daemon", "server", "command", "binary", "service")


_ENGLISH_SUFFIXES = ("tion", "sion", "ing", "ment", "ness", "ity", "ance", "ence", "ies", "ings", "ions")


def _tracing_vocabulary(word: str) -> bool:
    """A word the examples corpus uses (page, execution, latency...): a topic, not a program name."""
    from .retrieval import index, stem

    return stem(word) in index().idf


def plausible_process(name: str, text: str, match: re.Match[str]) -> bool:
    if (not name or name in NOT_PROCESS or name in NOT_A_PROCESS or name in STOP_WORDS or name.isdigit()
            or len(name) > 64):
        return False
    phrase = match.group(0)
    if phrase.endswith(" calls") and (_calls_of_a_function(name, text) or name not in KNOWN_PROCESSES):
        return False  # "frobnicate calls": calls of a function far more often than a program that calls
    if re.fullmatch(r"(?:processes|programs)\s+\S+", phrase) and name in _WHAT_PROCESSES_DO:  # "processes sleep"
        return False
    if name in KNOWN_PROCESSES:
        return True
    if name in action_words() or name in _negation_words():  # "by process tally", "process except java"
        return False
    if _tracing_vocabulary(name) or name.endswith(_ENGLISH_SUFFIXES):
        return False
    if text[match.end(1) :].lstrip().startswith(_ACTOR_NOUNS):
        return True
    if re.match(r"\s+(?:id|ids|name|names|number|numbers|type|types|code|codes|address|addresses|reason|reasons|"
                r"size|sizes|state|states|kind|kinds|class|level|index|value|values|count|counts)\b",
                text[match.end(1):]):
        return False  # "by table id", "by exit reason": a field to count by, not a program
    if (phrase.startswith(("by ", "named", "called", "comm", "process", "program", "command", "strace", "ltrace",
                           "what ", "how long ")) or phrase.endswith("'s")):
        return True
    if phrase.startswith(("does ", "did ", "do ", "is ", "are ", "was ", "were ", "has ", "have ")):
        return not ordinary_word(name)
    if re.search(rf"\s(?:{SUBJECT_VERBS})$", phrase):  # a program doing something: "files nginx reads"
        return not ordinary_word(name)
    return False


_WHAT_PROCESSES_DO = {"sleep", "wait", "run", "block", "exit", "die", "start", "stop", "hang", "spin", "fork", "spend",
                      "crash", "get", "use", "make"}


def _calls_of_a_function(name: str, text: str) -> bool:
    """"chdir calls", "vfs_read calls", "sleep calls (nanosleep)": the noun, calls of a function, not what a
    program named so calls."""
    from ..kernel.syscalls import is_syscall

    return (is_syscall(name) or "_" in name
            or any(is_syscall(w) for w in re.findall(rf"\b\w+{re.escape(name)}\b", text)))

