"""The glossary of builtins, functions, helpers, macros and probe kinds (``glossary.yaml``), loaded once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

GLOSSARY_FILE = Path(__file__).with_name("glossary.yaml")


@dataclass(frozen=True)
class Entry:
    name: str
    section: str
    text: str
    noun: str | None = None
    cost: str | None = None
    kind: str | None = None
    needs: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)


class Glossary:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._sections: dict[str, dict[str, Entry]] = {}
        for section, body in data.items():
            if isinstance(body, dict):
                self._sections[section] = {name: _entry(name, section, value) for name, value in body.items()}

    def section(self, name: str) -> dict[str, Entry]:
        return self._sections.get(name, {})

    def words(self, name: str) -> frozenset[str]:
        value = self.data.get(name, [])
        return frozenset(value) if isinstance(value, list) else frozenset()

    # -- bpftrace ----------------------------------------------------------------------------------
    def bt_builtin(self, name: str) -> Entry | None:
        builtins = self.section("bpftrace_builtins")
        if name in builtins:
            return builtins[name]
        if re.fullmatch(r"arg\d+", name):
            return builtins.get("arg")
        if re.fullmatch(r"sarg\d+", name):
            return builtins.get("sarg")
        if re.fullmatch(r"\$\d+", name):
            return builtins.get("positional")
        return None

    def bt_function(self, name: str) -> Entry | None:
        return self.section("bpftrace_functions").get(name)

    def probe_kind(self, kind: str) -> Entry | None:
        return self.section("probe_kinds").get(kind)

    # -- BCC ---------------------------------------------------------------------------------------
    def bcc(self, name: str) -> Entry | None:
        """A C-side name: helper, macro/constant, or C builtin."""
        for section in ("bcc_helpers", "bcc_macros", "c_builtins"):
            entry = self.section(section).get(name)
            if entry:
                return entry
        return None

    def map_method(self, name: str) -> Entry | None:
        return self.section("bcc_map_methods").get(name)

    def python_api(self, name: str) -> Entry | None:
        return self.section("bcc_python").get(name)

    # -- kernel ------------------------------------------------------------------------------------
    def tracepoint(self, category: str, name: str) -> Entry | None:
        return self.section("tracepoints").get(f"{category}:{name}")

    def category(self, category: str) -> Entry | None:
        return self.section("tracepoint_categories").get(category)

    def kernel_function(self, name: str) -> Entry | None:
        return self.section("kernel_functions").get(name)

    def lsm_hook(self, name: str) -> Entry | None:
        return self.section("lsm_hooks").get(name)


def _entry(name: str, section: str, value: Any) -> Entry:
    if isinstance(value, str):
        return Entry(name, section, value)
    if not isinstance(value, dict):
        return Entry(name, section, "")
    known = {"text", "noun", "cost", "kind", "needs"}
    extra = tuple((k, v) for k, v in value.items() if k not in known)
    return Entry(
        name,
        section,
        str(value.get("text", "")).strip(),
        value.get("noun"),
        value.get("cost"),
        value.get("kind"),
        value.get("needs"),
        extra,
    )


@lru_cache(maxsize=1)
def load() -> Glossary:
    return Glossary(_data())


def _data() -> dict[str, Any]:
    """The parsed YAML. Without libyaml, parsing takes ~0.3 s, so a JSON copy is kept in the cache dir."""
    import json

    import yaml

    stat = GLOSSARY_FILE.stat()
    cached = None
    if not hasattr(yaml, "CSafeLoader"):
        try:
            from .. import paths, safefs

            cached = paths.cache_dir() / f"glossary-{stat.st_mtime_ns}-{stat.st_size}.json"
            blob = safefs.read_file(cached)
            if blob is not None:
                return json.loads(blob)
        except ValueError:
            pass
    data = yaml.load(GLOSSARY_FILE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    if cached is not None:
        try:
            with safefs.TrustedDir(cached.parent, create=True) as d:
                for old in d.names():
                    if old.startswith("glossary-") and old.endswith(".json"):
                        d.unlink(old)
                d.write_text(cached.name, json.dumps(data))
        except OSError:
            pass
    return data
