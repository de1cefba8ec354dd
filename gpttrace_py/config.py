"""User settings for the LLM planner, like other LLM command-line tools keep them.

One flat TOML file, ``config_dir()/config.toml`` (``~/.config/gpttrace/config.toml``; under ``$GPTTRACE_HOME``
in tests). What a command uses is resolved in this order: the command-line option (``-m/--model``), the
environment, the config file, the default::

    api_key      OPENAI_API_KEY            the key of the OpenAI(-compatible) service
    base_url     OPENAI_BASE_URL           e.g. http://localhost:11434/v1 for ollama, :8000/v1 for vLLM
    model        GPTTRACE_MODEL            default gpt-4o-mini
    timeout      GPTTRACE_LLM_TIMEOUT      seconds for one request (default 120)
    max_retries  GPTTRACE_LLM_MAX_RETRIES  retries of a busy service (429/5xx), with backoff (default 2)
    max_tokens   GPTTRACE_LLM_MAX_TOKENS   the longest reply asked for, in tokens (default 1536)

A file that holds a key is created readable by its owner only (0600). Keys are never printed in full. The file is
read only through safefs: it and every folder above it must belong to root (or the user running gpttrace) and be
writable by nobody else; a file that fails this is ignored with a warning (another user could have planted it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import safefs
from .errors import UsageError
from .paths import config_dir

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_RETRIES = 2
MAX_CONFIG_BYTES = 1 << 16
DEFAULT_MAX_TOKENS = 1536  # a spec in wire form with every field written out; tests/test_llm.py checks the corpus fits


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    help: str
    secret: bool = False
    default: Any = None


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("api_key", "OPENAI_API_KEY", "API key of the model service", secret=True),
        Setting("base_url", "OPENAI_BASE_URL", "OpenAI-compatible endpoint, e.g. http://localhost:11434/v1"),
        Setting("model", "GPTTRACE_MODEL", "model to plan with", default=DEFAULT_MODEL),
        Setting("timeout", "GPTTRACE_LLM_TIMEOUT", "seconds to wait for one answer", default=DEFAULT_TIMEOUT),
        Setting("max_retries", "GPTTRACE_LLM_MAX_RETRIES", "retries of a busy service (429/5xx)",
                default=DEFAULT_MAX_RETRIES),
        Setting("max_tokens", "GPTTRACE_LLM_MAX_TOKENS", "longest reply asked for, in tokens",
                default=DEFAULT_MAX_TOKENS),
    )
}
ALIASES = {"key": "api_key", "api-key": "api_key", "openai_api_key": "api_key", "base-url": "base_url",
           "url": "base_url", "openai_base_url": "base_url", "gpttrace_model": "model", "max-retries": "max_retries",
           "max-tokens": "max_tokens"}


def config_path() -> Path:
    return config_dir() / "config.toml"


def canonical_key(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key).replace("-", "_")
    if key not in SETTINGS:
        raise UsageError(f"unknown setting {name!r}", f"settings: {', '.join(SETTINGS)}")
    return key


def check_value(key: str, value: str) -> Any:
    """The typed value of a setting, or a UsageError saying what is expected."""
    value = value.strip()
    if not value:
        raise UsageError(f"{key} cannot be empty", f"use `gpttrace config unset {key}` to remove it")
    if key == "base_url":
        if not re.match(r"https?://[^\s/]+", value):
            raise UsageError(f"base_url must be an http(s) URL, got {value!r}", "e.g. http://localhost:11434/v1")
        return value.rstrip("/")
    if key == "timeout":
        try:
            seconds = float(value)
        except ValueError:
            raise UsageError(f"timeout must be a number of seconds, got {value!r}") from None
        if not 1 <= seconds <= 3600:
            raise UsageError("timeout must be between 1 and 3600 seconds")
        return seconds
    if key == "max_retries":
        if not value.isdigit() or int(value) > 10:
            raise UsageError(f"max_retries must be a whole number from 0 to 10, got {value!r}")
        return int(value)
    if key == "max_tokens":
        if not value.isdigit() or not 32 <= int(value) <= 32768:
            raise UsageError(f"max_tokens must be a whole number from 32 to 32768, got {value!r}")
        return int(value)
    if any(ord(c) < 32 for c in value):
        raise UsageError(f"{key} must not contain control characters")
    return value


# -- the file ---------------------------------------------------------------------------------------------
def load_config(path: Path | None = None) -> dict[str, Any]:
    """The settings stored in the config file ({} when there is none). Unknown keys are kept, bad values dropped."""
    path = path or config_path()
    try:
        with safefs.TrustedDir(path.parent) as d:
            text = d.read_text(path.name, MAX_CONFIG_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except safefs.UnsafePath as exc:
        _ignored(path, str(exc))
        return {}
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text", "fix it, or remove it and use `gpttrace config set`") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = _parse_toml(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}",
                         "fix it, or remove it and use `gpttrace config set`") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in SETTINGS:
            try:
                out[key] = check_value(key, str(value))
            except UsageError:
                continue
        else:
            out[key] = value
    return out


def save_config(data: dict[str, Any], path: Path | None = None) -> Path:
    """Write the settings atomically; the file is 0600 (it may hold a key) and its folder 0700 when created."""
    path = path or config_path()
    lines = ["# gpttrace settings: edit with `gpttrace config set KEY VALUE` / `gpttrace config unset KEY`"]
    for key in sorted(data):
        lines.append(f"{key} = {_toml_value(data[key])}")
    try:
        with safefs.TrustedDir(path.parent, create=True) as d:
            d.write_text(path.name, "\n".join(lines) + "\n", 0o600)
    except safefs.UnsafePath as exc:
        raise UsageError(f"not writing {path}: {exc}",
                         "the config folder and every folder above it must belong to root (or you) and be "
                         "writable by nobody else") from None
    return path


_warned: set[str] = set()


def _ignored(path: Path, why: str) -> None:
    """Say once that a config file another user could have written is not used."""
    import sys

    if str(path) not in _warned:
        _warned.add(str(path))
        sys.stderr.write(f"gpttrace: ignoring the config file {path}: {why} "
                         "(it must belong to root or you and be writable by nobody else)\n")


def set_value(key: str, value: str) -> Path:
    key = canonical_key(key)
    data = load_config()
    data[key] = check_value(key, value)
    return save_config(data)


def unset_value(key: str) -> bool:
    key = canonical_key(key)
    data = load_config()
    if key not in data:
        return False
    del data[key]
    save_config(data)
    return True


# -- what a command uses ------------------------------------------------------------------------------------
@dataclass
class Resolved:
    value: Any
    source: str  # 'option', 'env OPENAI_API_KEY', 'config', 'default', or '' when unset


def resolve(overrides: dict[str, Any] | None = None) -> dict[str, Resolved]:
    """Every setting with where its value comes from: option > environment > config file > default."""
    overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    stored = load_config()
    out: dict[str, Resolved] = {}
    for key, s in SETTINGS.items():
        if key in overrides:
            out[key] = Resolved(overrides[key], "option")
            continue
        env = os.environ.get(s.env)
        if env:
            try:
                out[key] = Resolved(check_value(key, env), f"env {s.env}")
                continue
            except UsageError as exc:
                raise UsageError(f"${s.env}: {exc.message}", exc.hint) from None
        if key in stored:
            out[key] = Resolved(stored[key], "config")
        elif s.default is not None:
            out[key] = Resolved(s.default, "default")
        else:
            out[key] = Resolved(None, "")
    return out


def settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return {k: r.value for k, r in resolve(overrides).items()}


def mask(secret: str | None) -> str:
    """A key shown without giving it away: 'sk-...abcd' (or 'set' when it is too short to show a part of)."""
    if not secret:
        return "(not set)"
    if len(secret) < 12:
        return "set"
    head = secret[:3] if secret.startswith(("sk-", "gsk", "pk-")) else secret[:2]
    return f"{head}...{secret[-4:]}"


# -- a small TOML subset: flat `key = value` lines (tomllib reads it when Python has it) ----------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def _parse_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return _parse_flat_toml(text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(str(exc)) from None


def _parse_flat_toml(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep:
            raise ValueError(f"line {number}: expected key = value")
        raw = raw.strip()
        try:
            out[key.strip()] = json.loads(raw) if raw[:1] == '"' else (
                {"true": True, "false": False}[raw] if raw in ("true", "false") else json.loads(raw))
        except (ValueError, KeyError):
            raise ValueError(f"line {number}: cannot read the value {raw!r}") from None
    return out
