"""Atomic writes: whole files only, readable by others like any file the user writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reliability.files import write_atomic


def test_written_file_has_the_mode_a_plain_write_would_have(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_atomic(tmp_path / "atomic.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode)
    assert mode & stat.S_IROTH  # a report is readable by a CI artifact uploader or a web server


def test_a_write_that_cannot_land_leaves_no_temporary_file(tmp_path: Path) -> None:
    blocker = tmp_path / "result.json"  # a non-empty directory cannot be replaced by a file
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    with pytest.raises(OSError):
        write_atomic(blocker, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert (blocker / "keep").read_text() == "x"
