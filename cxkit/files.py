"""Writing files so that a reader never sees half of one.

:func:`atomic_open` writes to a temporary file in the target's folder, flushes it to
disk and renames it over the target; :func:`atomic_write` does that for a ``str`` or
``bytes``. A failure leaves the old file as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_open", "atomic_write"]


@contextlib.contextmanager
def atomic_open(path: str | Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a binary file whose content replaces ``path`` only when the block succeeds.

    Parameters
    ----------
    path
        The file to write; its folder is created when missing.
    mode
        The permission bits the finished file gets.

    Yields
    ------
    BinaryIO
        A file opened for binary writing: a temporary ``.<name>.*.tmp`` file in the
        target's folder, renamed over ``path`` when the block ends without an error.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> with atomic_open(p) as fh:
    ...     _ = fh.write(b"ok")
    >>> p.read_bytes()
    b'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write(path: str | Path, content: str | bytes, *, mode: int = 0o644) -> Path:
    """Write ``content`` to ``path`` atomically (see :func:`atomic_open`).

    Parameters
    ----------
    path
        The file to write.
    content
        Text (written as UTF-8) or bytes.
    mode
        The permission bits of the finished file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_open(path, mode=mode) as fh:
        fh.write(data)
    return Path(path)
