"""The words the planner reads, per language, as data (``lexicon/en.json``): loaded once, read by the
extractors in understand.py. Adding a language is adding a file of the same shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "lexicon"


@dataclass(frozen=True)
class Need:
    """Something only some machines have, and the words that ask for it."""

    name: str
    phrases: tuple[str, ...]
    feature: str  # a kernel.features.Features attribute, or 'catalog:<tracepoint category>'
    what: str
    fix: str
    not_after: tuple[str, ...] = ()  # words that make a phrase mean something else ("page cache misses")


@dataclass(frozen=True)
class Subsystem:
    word: str
    categories: tuple[str, ...]  # tracepoint categories that would serve it
    what: str


@dataclass(frozen=True)
class Lexicon:
    language: str
    filler: frozenset[str]
    imperative_prefix: tuple[str, ...]
    system_actions: dict[str, str]
    action_objects_needed: frozenset[str]
    action_objects: frozenset[str]
    action_objects_not: dict[str, frozenset[str]]  # per verb: objects that make it a noun phrase ("block I/O")
    needs: tuple[Need, ...]
    subsystems: dict[str, Subsystem]
    tracepoint_words: dict[str, tuple[str, ...]]
    negation: tuple[str, ...]
    formats: dict[str, tuple[str, ...]]
    messages: dict[str, str]  # what the user reads about a plan, in this language
    terms: dict[str, str]  # a language read through English: its phrases and the English they mean
    foreign_markers: dict[str, frozenset[str]]  # words of languages the planner does not read, by language
    verbs: dict[str, str]  # the action verbs (system_actions) as this language says them
    particles: dict[str, tuple[str, ...]]  # words read by what stands beside them (possessive, exclusion, agent)
    count_words: tuple[str, ...]  # "how many", "tally": the number of events asked for
    measure_words: tuple[str, ...]  # "how long", "bytes": an amount asked for, not a number of events

    def say(self, key: str, **values: object) -> str:
        text = self.messages.get(key) or load("en").messages[key]
        return text.format(**values) if values else text


def _public(table: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if not k.startswith("_")}


@lru_cache(maxsize=4)
def load(language: str = "en") -> Lexicon:
    data = json.loads((HERE / f"{language}.json").read_text(encoding="utf-8"))
    needs = tuple(Need(name, tuple(v["phrases"]), v["feature"], v["what"], v["fix"], tuple(v.get("not_after", ())))
                  for name, v in _public(data.get("needs", {})).items())
    subsystems = {w: Subsystem(w, tuple(v["categories"]), v["what"])
                  for w, v in _public(data.get("subsystems", {})).items()}
    return Lexicon(
        language=language,
        filler=frozenset(data.get("filler", ())),
        imperative_prefix=tuple(sorted(data.get("imperative_prefix", ()), key=len, reverse=True)),
        system_actions=_public(data.get("system_actions", {})),
        action_objects_needed=frozenset(data.get("action_objects_needed", ())),
        action_objects=frozenset(data.get("action_objects", ())),
        action_objects_not={k: frozenset(v) for k, v in _public(data.get("action_objects_not", {})).items()},
        needs=needs,
        subsystems=subsystems,
        tracepoint_words={k: tuple(v) for k, v in _public(data.get("tracepoint_words", {})).items()},
        negation=tuple(sorted(data.get("negation", ()), key=len, reverse=True)),
        formats={k: tuple(v) for k, v in data.get("formats", {}).items()},
        messages=_public(data.get("messages", {})),
        terms=_public(data.get("terms", {})),
        foreign_markers={k: frozenset(v) for k, v in _public(data.get("foreign_markers", {})).items()},
        verbs=_public(data.get("verbs", {})),
        particles={k: tuple(v) for k, v in _public(data.get("particles", {})).items()},
        count_words=tuple(data.get("count_words", ())),
        measure_words=tuple(data.get("measure_words", ())),
    )
