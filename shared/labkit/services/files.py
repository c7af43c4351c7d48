"""Writing files so that readers in any process see the old file or the whole new one.

The one way every room writes a file others may be reading (resources, job records,
object metadata, the credentials file): the bytes go to a temporary file beside the
target, named with TMP_MARK so that listings skip it, and are renamed into place.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

TMP_MARK = ".labkit-tmp-"  # partial writes; Cloud Storage listings never show them


def temp_beside(path: Path) -> Path:
    return path.with_name(f"{TMP_MARK}{path.name}.{os.getpid()}.{secrets.token_hex(4)}")


def write_atomic(path: Path, data: str | bytes, *, replace: bool = True,
                 mode: int = 0o600) -> None:
    """replace=False keeps an existing file (the first writer wins). Parent folders are
    created; the file is private to its user unless `mode` says otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    try:
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another process created it first
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


def move_atomic(source: Path, path: Path) -> None:
    """Moves a finished file into place in one step (copying beside the target first when
    the two are on different file systems)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, path)
    except OSError:
        staged = temp_beside(path)
        try:
            shutil.copyfile(source, staged)
            os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)
