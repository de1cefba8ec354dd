"""Where things live: the project's data (templates, corpus, prompts) and the user's directories.

``GPTTRACE_HOME`` puts every user directory under one folder (tests point it at a temp dir); otherwise the
XDG base directories are used.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """A folder of project data: 'templates', 'examples_corpus' or 'prompts'.

    An editable install or a checkout reads them from the repository root; a wheel carries them inside
    the package under ``_data``."""
    bundled = _PACKAGE / "_data" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


def _xdg(var: str, default: str, sub: str) -> Path:
    home = os.environ.get("GPTTRACE_HOME")
    if home:
        path = Path(home) / sub
    else:
        base = os.environ.get(var) or os.path.expanduser(default)
        path = Path(base) / "gpttrace"
    return path


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", "~/.config", "config")


def data_home() -> Path:
    return _xdg("XDG_DATA_HOME", "~/.local/share", "data")


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", "~/.local/state", "state")


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", "~/.cache", "cache")
