"""Speed tricks that reach into other packages' internals, gathered in one place with one switch.

Each makes a start or a trace faster without changing what gpttrace does; each leans on something a package
does not promise (a private module, a private method, a file layout). ``GPTTRACE_SPEEDUPS=0`` turns them all off,
so that a new version of a package that breaks one can be told from a bug (tests/test_speedups.py checks
that each one is off when switched off; the whole suite passes both ways).

- pydantic: its plugin loader, which scans every installed package's entry points, stood in for (this module)
- the interpreter: fewer garbage collections while starting, no teardown at exit (this module)
- the corpus: its parsed YAML kept as marshal data (``corpus.py``)
- BCC: a compiled program's bytecode kept and loaded without clang (``run/bcc_cache.py``, used by ``run/bcc.py``;
  GPTTRACE_BCC_CACHE=0 turns off this one alone)

(The OpenAI SDK's retries are not one: the client is made with ``max_retries=0`` and the planner's own loop
waits, planning/llm.py.)
"""

from __future__ import annotations

import os
import sys


def enabled() -> bool:
    """False when ``GPTTRACE_SPEEDUPS=0`` (also "no", "off", "false")."""
    return os.environ.get("GPTTRACE_SPEEDUPS", "1").strip().lower() not in ("0", "no", "off", "false")


# -- the interpreter --------------------------------------------------------------------------------------------
def fewer_collections() -> None:
    """Start-up (pydantic's schemas, the corpus) allocates many objects and few cycles: collecting every 700
    allocations costs ~8% of it. A long trace still collects, every 100,000."""
    if enabled():
        import gc

        gc.set_threshold(100_000, 50, 100)


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown, which frees every object still alive one at a time
    (the corpus, pydantic's schemas): 10-20 ms after each trace, for a process about to end anyway. What
    teardown would do that matters is done first: the atexit callbacks, and flushing standard output.
    Switched off, the process ends the ordinary way."""
    if not enabled():
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head) or a closed stream: nothing more to say
            pass
    os._exit(code)


# -- pydantic ---------------------------------------------------------------------------------------------------
PYDANTIC_PLUGIN_LOADER = "pydantic.plugin._loader"


def no_pydantic_plugins() -> None:
    """gpttrace uses no pydantic plugin, and looking for one costs every start 20-40 ms: pydantic's plugin
    loader imports importlib.metadata (email, zipfile, csv...) to scan the installed packages' entry points,
    when the first model is built. Stand in for that loader with one that finds no plugin, which is what
    PYDANTIC_DISABLE_PLUGINS=__all__ makes the real one answer. Any other name asked of it comes from the real
    loader, so a pydantic that uses more of it still works."""
    import types

    if not enabled() or PYDANTIC_PLUGIN_LOADER in sys.modules:
        return
    stand_in = types.ModuleType(PYDANTIC_PLUGIN_LOADER)

    def real(name: str) -> object:
        if name.startswith("__"):  # the import system asks a module for __path__ and the like
            raise AttributeError(name)
        import importlib

        sys.modules.pop(PYDANTIC_PLUGIN_LOADER, None)
        return getattr(importlib.import_module(PYDANTIC_PLUGIN_LOADER), name)

    vars(stand_in).update(get_plugins=lambda: (), __getattr__=real)  # a module's __getattr__: PEP 562
    sys.modules[PYDANTIC_PLUGIN_LOADER] = stand_in
