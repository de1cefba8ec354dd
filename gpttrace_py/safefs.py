"""Files gpttrace reads and writes as root, opened so that another local user cannot redirect them.

gpttrace runs as root, and some of its files end up in places another user can reach (``GPTTRACE_HOME`` in a
shared folder, ``sudo -E`` keeping a user's HOME). Everything root reads back (caches, the config file, state)
and everything it writes goes through this module:

* ``TrustedDir(path)``: a directory opened by descriptor, walked from ``/`` one component at a time with
  ``O_DIRECTORY|O_NOFOLLOW``; every component is checked with ``fstat`` on the descriptor: owned by root or by
  this user, and not writable by group or others (a sticky directory such as /tmp may be crossed: nobody else
  can rename or remove the component under it, which is checked to be ours). Files in it are opened with
  ``dir_fd`` and ``O_NOFOLLOW`` and checked the same way before anything is read; they are written to a new
  temporary file (``O_CREAT|O_EXCL``) and renamed over the old one. A path that fails a check is not used.
* ``write_output(path, text)``: a file the user asked for (``-o``, chat ``/save``): written in a directory
  that only root or this user can write, through a new temporary file renamed over the name, so a symlink
  planted at the name is replaced, never followed.

Only the standard library is used: the BCC launcher (run/bcc_cache.py) loads this file by path inside BCC's
interpreter.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafePath(OSError):
    """A path that another user could have written or redirected."""


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid())


def why_untrusted(st: os.stat_result, final: bool = True) -> str | None:
    """Why a directory or file with this ``fstat`` cannot be trusted, or None.

    ``final`` False for a directory on the way (a sticky one may be writable by others)."""
    if not _owner_ok(st):
        return f"it belongs to uid {st.st_uid}"
    if st.st_mode & 0o022:
        if not final and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
            return None
        return "other users can write it"
    return None


def _check(fd: int, path: str, final: bool) -> None:
    st = os.fstat(fd)
    why = why_untrusted(st, final)
    if why:
        raise UnsafePath(f"{path}: {why}")


def open_trusted_dir(path: str | os.PathLike[str], create: bool = False, mode: int = 0o700) -> int:
    """A descriptor of the directory ``path`` whose every component is root's or this user's and not writable
    by others (see the module docstring); missing components are created (``mode``) when ``create``.
    Raises OSError (UnsafePath when a check fails)."""
    # symlinks in the path as given are resolved first (a home under a symlinked /home); the result is then
    # walked without following any, so a component swapped for a symlink after this is refused
    parts = Path(os.path.realpath(path)).parts
    fd = os.open("/", _DIR_FLAGS)
    where = "/"
    try:
        _check(fd, where, final=len(parts) == 1)
        for i, name in enumerate(parts[1:], 2):
            where = os.path.join(where, name)
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (40, 20):  # ELOOP, ENOTDIR: a symlink or a file where a directory should be
                    raise UnsafePath(f"{where}: not a directory (a symlink is not followed)") from None
                raise
            os.close(fd)
            fd = nfd
            _check(fd, where, final=i == len(parts))
        return fd
    except BaseException:
        os.close(fd)
        raise


class TrustedDir:
    """A directory checked by ``open_trusted_dir`` and the files in it, all by descriptor."""

    def __init__(self, path: str | os.PathLike[str], create: bool = False) -> None:
        self.path = Path(path)
        self.fd = open_trusted_dir(self.path, create)

    @classmethod
    def open(cls, path: str | os.PathLike[str], create: bool = False) -> TrustedDir | None:
        """The directory, or None when it is missing or cannot be trusted."""
        try:
            return cls(path, create)
        except OSError:
            return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> TrustedDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, AttributeError, TypeError):  # at interpreter exit, os may already be torn down
            pass

    def subdir(self, name: str, create: bool = False) -> TrustedDir:
        _plain(name)
        sub = TrustedDir.__new__(TrustedDir)
        sub.path = self.path / name
        if create:
            try:
                os.mkdir(name, 0o700, dir_fd=self.fd)
            except FileExistsError:
                pass
        try:
            sub.fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (40, 20):
                raise UnsafePath(f"{sub.path}: not a directory (a symlink is not followed)") from None
            raise
        try:
            _check(sub.fd, str(sub.path), final=True)
        except BaseException:
            sub.close()
            raise
        return sub

    # -- reading ------------------------------------------------------------------------------------------
    def open_file(self, name: str) -> int:
        """A descriptor of the regular file ``name`` (not a symlink), root's or this user's and not writable by
        others; raises OSError."""
        _plain(name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | _NONBLOCK, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == 40:
                raise UnsafePath(f"{self.path / name}: a symlink is not followed") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePath(f"{self.path / name}: not a regular file")
            why = why_untrusted(st)
            if why:
                raise UnsafePath(f"{self.path / name}: {why}")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read_bytes(self, name: str, limit: int = 64 << 20) -> bytes:
        fd = self.open_file(name)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise UnsafePath(f"{self.path / name}: larger than {limit} bytes")
        return data

    def read_text(self, name: str, limit: int = 64 << 20) -> str:
        return self.read_bytes(name, limit).decode("utf-8")

    def get_bytes(self, name: str, limit: int = 64 << 20) -> bytes | None:
        """The file's bytes, or None when it is missing or cannot be trusted."""
        try:
            return self.read_bytes(name, limit)
        except OSError:
            return None

    # -- writing ------------------------------------------------------------------------------------------
    def write_bytes(self, name: str, data: bytes, mode: int = 0o600) -> None:
        """Replace ``name`` with ``data``: a new temporary file (O_CREAT|O_EXCL|O_NOFOLLOW) renamed over it."""
        _replace(self.fd, name, data, mode)

    def write_text(self, name: str, text: str, mode: int = 0o600) -> None:
        self.write_bytes(name, text.encode("utf-8"), mode)

    def open_append(self, name: str, mode: int = 0o600) -> int:
        """``name`` opened (created if missing) for reading and appending, by descriptor, never through a
        symlink; it must be a regular file of root's or this user's that others cannot write."""
        _plain(name)
        try:
            fd = os.open(name, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | _NONBLOCK, mode,
                         dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == 40:
                raise UnsafePath(f"{self.path / name}: a symlink is not followed") from None
            raise
        st = os.fstat(fd)
        why = "not a regular file" if not stat.S_ISREG(st.st_mode) else why_untrusted(st)
        if why:
            os.close(fd)
            raise UnsafePath(f"{self.path / name}: {why}")
        return fd

    def create_new(self, name: str, mode: int = 0o600) -> int:
        """A new file ``name`` (O_CREAT|O_EXCL|O_NOFOLLOW), open for appending; raises FileExistsError."""
        _plain(name)
        return os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                       mode, dir_fd=self.fd)

    # -- the rest -----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def lstat(self, name: str) -> os.stat_result:
        _plain(name)
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def unlink(self, name: str) -> None:
        _plain(name)
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def touch(self, name: str) -> None:
        _plain(name)
        try:
            os.utime(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            pass


def _replace(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    _plain(name)
    tmp = f".{name[:80]}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def _plain(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise UnsafePath(f"not a plain file name: {name!r}")


def trusted(path: str | os.PathLike[str], create: bool = False) -> TrustedDir | None:
    """``TrustedDir.open``: the directory, or None when it is missing or cannot be trusted."""
    return TrustedDir.open(path, create)


# -- files the user names --------------------------------------------------------------------------------------
def write_output(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> None:
    """Write a file the user asked for. Its directory must be root's or this user's and writable by nobody else
    (UnsafePath otherwise); the text goes to a new temporary file there, renamed over ``path``: a symlink at
    ``path`` is replaced, never followed, and a directory there is an error."""
    target = Path(path)
    name = target.name
    _plain(name)
    parent = str(target.parent) or "."
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(dfd)
        why = why_untrusted(st)
        if why:
            raise UnsafePath(f"the folder {parent}: {why}")
        try:
            old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and stat.S_ISDIR(old.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        _replace(dfd, name, text.encode("utf-8"), mode)
    finally:
        os.close(dfd)


# -- one file in a trusted directory ---------------------------------------------------------------------------
def read_file(path: str | os.PathLike[str], limit: int = 64 << 20) -> bytes | None:
    """The bytes of ``path`` when it and its directory pass the checks (TrustedDir), else None."""
    p = Path(path)
    d = trusted(p.parent)
    if d is None:
        return None
    with d:
        return d.get_bytes(p.name, limit)


def write_file(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> bool:
    """Replace ``path`` (in a trusted directory, created if missing) with ``data``; False when it cannot."""
    p = Path(path)
    try:
        with TrustedDir(p.parent, create=True) as d:
            d.write_bytes(p.name, data, mode)
        return True
    except OSError:
        return False
