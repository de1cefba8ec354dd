"""Writing a file as root without following symlinks: a temporary file in the same directory, then a rename.

The rename replaces whatever name is there (a symlink included) and never writes through it. A directory that
other users can write to (without the sticky bit, which stops them renaming or deleting root's files) is
refused: someone there could swap the directory's entries between our check and our rename.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class UnsafeTarget(Exception):
    pass


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    st = os.stat(directory)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        raise UnsafeTarget(f"{directory} is writable by other users")
    if path.is_dir():
        raise UnsafeTarget("it is a directory")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
