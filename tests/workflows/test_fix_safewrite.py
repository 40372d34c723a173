"""--write: atomic replacement with a backup, refused when the file changed meanwhile, rolled back on failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codeloop.workflows import safewrite
from codeloop.workflows.safewrite import backup_name, write_changes
from codeloop.workflows.snapshot import InputError


def test_write_keeps_a_backup_and_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("old\n")
    path.chmod(0o640)
    inode = path.stat().st_ino
    written = write_changes({path: (b"old\n", "new\n")})
    assert path.read_text() == "new\n"
    assert written[0].backup == tmp_path / "m.py.orig"
    assert (tmp_path / "m.py.orig").read_text() == "old\n"
    assert (tmp_path / "m.py.orig").stat().st_ino == inode  # the old file itself, kept under the backup name
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py", "m.py.orig"]  # no temporary file left
    write_changes({path: (b"new\n", "newer\n")})
    assert (tmp_path / "m.py.orig").read_text() == "old\n"  # an existing backup is never overwritten
    assert (tmp_path / "m.py.orig.1").read_text() == "new\n"
    assert backup_name(path) == tmp_path / "m.py.orig.2"


def test_refuses_a_file_changed_since_it_was_read(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("a\n")
    b.write_text("edited by the user\n")
    with pytest.raises(InputError, match="changed since"):
        write_changes({a: (b"a\n", "A\n"), b: (b"b\n", "B\n")})
    assert a.read_text() == "a\n" and b.read_text() == "edited by the user\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"]


def test_refuses_to_write_through_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    real.write_text("x\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    with pytest.raises(InputError, match="symbolic link"):
        write_changes({link: (b"x\n", "y\n")})
    assert real.read_text() == "x\n"


def test_a_failure_midway_puts_back_what_was_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("a\n")
    b.write_text("b\n")
    real_replace = os.replace
    calls = []

    def flaky_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(dst)
        if Path(dst) == b:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(safewrite.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        write_changes({a: (b"a\n", "A\n"), b: (b"b\n", "B\n")})
    assert a.read_text() == "a\n" and b.read_text() == "b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"]
