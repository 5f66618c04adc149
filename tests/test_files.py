"""cxkit.files: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cxkit import files
from cxkit.files import atomic_open, atomic_write


def _leftovers(folder: Path, target: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != target)


def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    assert atomic_write(target, "héllo\n") == target
    assert target.read_bytes() == "héllo\n".encode()
    atomic_write(str(target), b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path, "a.txt") == []


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test; the old one is restored afterwards."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def test_atomic_write_creates_the_folder_and_sets_the_mode(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    target = tmp_path / "new" / "deeper" / "x.html"
    atomic_write(target, "<p>x</p>", mode=0o600)
    assert target.read_text() == "<p>x</p>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, "<p>y</p>")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("mask", "expected"),
    [(0o077, 0o600), (0o027, 0o640), (0o022, 0o644), (0o002, 0o664)],
    ids=["umask077", "umask027", "umask022", "umask002"],
)
def test_the_finished_file_respects_the_umask(
    tmp_path: Path, umask: Callable[[int], None], mask: int, expected: int
) -> None:
    """As open(path, "w") would: 0o666 less the umask, also when replacing a file."""
    umask(mask)
    new, old = tmp_path / "new.html", tmp_path / "old.html"
    old.write_text("old")
    os.chmod(old, 0o644)
    atomic_write(new, "<p>x</p>")
    with atomic_open(old) as fh:
        fh.write(b"new")
    assert stat.S_IMODE(new.stat().st_mode) == expected
    assert stat.S_IMODE(old.stat().st_mode) == expected
    assert old.read_bytes() == b"new"
    assert _leftovers(tmp_path, "new.html") == ["old.html"]


def test_a_failure_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(target) as fh:
        fh.write(b"half of the new conte")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, "report.html") == []


def test_an_interrupt_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as fh:
        fh.write(b"new")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, "report.html") == []


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("{}")
    with pytest.raises(TypeError):
        atomic_write(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "{}"
    assert _leftovers(tmp_path, "manifest.json") == []


def test_a_failed_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "index.html"
    target.write_text("old")

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, "index.html") == []


def test_a_failed_flush_to_disk_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "scores.csv"
    target.write_text("old")

    def broken_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files.os, "fsync", broken_disk)
    with pytest.raises(OSError, match="Input/output error"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, "scores.csv") == []


def test_a_failure_without_an_old_file_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "first.html"
    with pytest.raises(ValueError, match="bad"), atomic_open(target) as fh:
        fh.write(b"x")
        raise ValueError("bad")
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_is_in_the_target_folder(tmp_path: Path) -> None:
    """Same folder, same file system: the rename is atomic."""
    target = tmp_path / "x.bin"
    with atomic_open(target) as fh:
        fh.write(b"done")
        (tmp_name,) = tmp_path.iterdir()
        assert tmp_name.name.startswith(".x.bin.") and tmp_name.name.endswith(".tmp")
        assert not target.exists()  # nothing visible until the block succeeds
    assert not tmp_name.exists()
    assert target.read_bytes() == b"done"
    assert os.access(target, os.R_OK)
