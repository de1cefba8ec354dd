"""Write an exported project's files into a directory without following symlinks (gpttrace runs as root).

The directory and its subdirectories are opened through ``safefs`` (the one safe-open path: every component
root's or the caller's and writable by nobody else, the directory itself not a symlink). Each file is written
to a new temporary file in its directory (O_CREAT|O_EXCL|O_NOFOLLOW, relative to the directory's descriptor)
and renamed over its name, so a symlink planted at a name is replaced, never written through.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from . import safefs
from .errors import UsageError


def write_files(directory: str, files: dict[str, str]) -> list[str]:
    """Create ``directory`` (0755) if needed and write ``files`` (name → text; a name may be SUBDIR/NAME) into
    it; the paths written."""
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot create {directory}: {exc.strerror}") from None
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise UsageError(f"cannot open {directory}: {exc.strerror} (a symlink is refused)") from None
    with _opened(st, lambda: safefs.TrustedDir(directory), directory) as top:
        written = []
        for name, text in files.items():
            sub, _, base = name.rpartition("/")
            if sub:
                _check_name(sub)
                try:
                    os.mkdir(sub, 0o755, dir_fd=top.fd)
                except FileExistsError:
                    pass
                with _subdir(top, sub, os.path.join(directory, sub)) as d:
                    _write(d, base, text)
            else:
                _write(top, base, text)
            written.append(os.path.join(directory, name))
        return written


_UNTRUSTED = "{} is not yours or others can write to it; choose another -o DIRECTORY"


def _check_name(name: str) -> None:
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a file name: {name!r}")


def _opened(st: os.stat_result, open_dir: Callable[[], safefs.TrustedDir], shown: str) -> safefs.TrustedDir:
    """The directory ``open_dir`` opens through safefs, whose lstat is ``st`` (a symlink is refused)."""
    if not stat.S_ISDIR(st.st_mode):
        why = os.strerror(errno.ELOOP if stat.S_ISLNK(st.st_mode) else errno.ENOTDIR)
        raise UsageError(f"cannot open {shown}: {why} (a symlink is refused)")
    try:
        return open_dir()
    except safefs.UnsafePath:
        raise UsageError(_UNTRUSTED.format(shown)) from None
    except OSError as exc:
        raise UsageError(f"cannot open {shown}: {exc.strerror} (a symlink is refused)") from None


def _subdir(parent: safefs.TrustedDir, name: str, shown: str) -> safefs.TrustedDir:
    try:
        st = parent.lstat(name)
    except OSError as exc:
        raise UsageError(f"cannot open {shown}: {exc.strerror} (a symlink is refused)") from None
    return _opened(st, lambda: parent.subdir(name), shown)


def _write(d: safefs.TrustedDir, name: str, text: str) -> None:
    """Write a new temporary file next to ``name`` and rename it over ``name``."""
    _check_name(name)
    d.write_text(name, text, 0o644)
