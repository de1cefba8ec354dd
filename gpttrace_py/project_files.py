"""Write an exported project's files into a directory without following symlinks (gpttrace runs as root).

Each file is written to a new temporary file in the same directory (O_CREAT|O_EXCL|O_NOFOLLOW, relative to
the directory's descriptor) and renamed over its name, so a symlink planted at a name is replaced, never
written through. A directory that others can write, or that is not the caller's, is refused.
"""

from __future__ import annotations

import os
import secrets
import stat

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
    dfd = _open_dir(directory)
    try:
        written = []
        for name, text in files.items():
            sub, _, base = name.rpartition("/")
            if sub:
                _check_name(sub)
                try:
                    os.mkdir(sub, 0o755, dir_fd=dfd)
                except FileExistsError:
                    pass
                sfd = _open_dir(sub, dfd, os.path.join(directory, sub))
                try:
                    _write(sfd, base, text)
                finally:
                    os.close(sfd)
            else:
                _write(dfd, base, text)
            written.append(os.path.join(directory, name))
        return written
    finally:
        os.close(dfd)


def _check_name(name: str) -> None:
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a file name: {name!r}")


def _open_dir(path: str, dir_fd: int | None = None, shown: str | None = None) -> int:
    """A descriptor of a directory of this user's that nobody else can write (a symlink is refused)."""
    shown = shown or path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        raise UsageError(f"cannot open {shown}: {exc.strerror} (a symlink is refused)") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        raise UsageError(f"{shown} is not yours or others can write to it; choose another -o DIRECTORY")
    return fd


def _write(dfd: int, name: str, text: str) -> None:
    """Write a new temporary file next to ``name`` and rename it over ``name``."""
    _check_name(name)
    tmp = f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dfd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        os.unlink(tmp, dir_fd=dfd)
        raise
