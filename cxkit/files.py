"""Writing files so that a reader never sees half of one.

:func:`atomic_open` writes to a temporary file in the target's folder, flushes it to
disk and renames it over the target; :func:`atomic_write` does that for a ``str`` or
``bytes``. A failure leaves the old file as it was and no temporary file behind. The
finished file gets the permissions a plain ``open(path, "w")`` would give it: ``0o666``
less the process umask (``umask 022`` gives ``0644``, ``umask 077`` gives ``0600``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_open", "atomic_write"]


@contextlib.contextmanager
def atomic_open(path: str | Path, *, mode: int = 0o666) -> Iterator[BinaryIO]:
    """Open a binary file whose content replaces ``path`` only when the block succeeds.

    Parameters
    ----------
    path
        The file to write; its folder is created when missing.
    mode
        The permission bits asked for, as in :func:`os.open`: the process umask is
        taken off them (the default gives what ``open(path, "w")`` gives).

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
    fd, tmp = _create_temporary(path, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
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


def _create_temporary(path: Path, mode: int) -> tuple[int, str]:
    """Create a new ``.<name>.<random>.tmp`` beside ``path``; return its descriptor and name.

    Unlike :func:`tempfile.mkstemp` (always ``0o600``), the file is created with ``mode``
    so that the kernel applies the umask, as it does for any new file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name beside {path}")


def atomic_write(path: str | Path, content: str | bytes, *, mode: int = 0o666) -> Path:
    """Write ``content`` to ``path`` atomically (see :func:`atomic_open`).

    Parameters
    ----------
    path
        The file to write.
    content
        Text (written as UTF-8) or bytes.
    mode
        The permission bits asked for; the process umask is taken off them.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_open(path, mode=mode) as fh:
        fh.write(data)
    return Path(path)
