"""The on-disk index cache: reused when nothing changed, rebuilt when anything did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reliability.errors import InputError
from reliability.runbooks.cache import cache_path, cached_index

from .conftest import WriteRunbook


def test_cache_is_reused_then_invalidated_by_an_edit(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    directory = tmp_path / "runbooks"
    path = write_runbook("disk-full", ["DiskFull"])
    first = cached_index(directory)
    assert cache_path(directory).is_file()
    assert [r.id for r in cached_index(directory).search("DiskFull")] == ["disk-full"]
    assert cached_index(directory) is not first  # unpickled copy, not a process-local memo

    path.write_text(path.read_text().replace("DiskFull]", "DiskFull, VolumeFull]"), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse-timestamp filesystems
    assert [r.id for r in cached_index(directory).search("VolumeFull")] == ["disk-full"]

    write_runbook("cpu-hot", ["CPUHot"])
    assert [r.id for r in cached_index(directory).search("CPUHot")] == ["cpu-hot"]


def test_corrupt_cache_is_rebuilt(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    directory = tmp_path / "runbooks"
    write_runbook("disk-full", ["DiskFull"])
    cached_index(directory)
    cache_path(directory).write_bytes(b"not a pickle")
    assert [r.id for r in cached_index(directory).search("DiskFull")] == ["disk-full"]


def test_malformed_runbook_is_reported_not_served_from_cache(
    write_runbook: WriteRunbook, tmp_path: Path
) -> None:
    directory = tmp_path / "runbooks"
    path = write_runbook("disk-full", ["DiskFull"])
    cached_index(directory)
    path.write_text(path.read_text().replace("severity: warning", "severity: meh"), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    with pytest.raises(InputError, match="severity"):
        cached_index(directory)


def test_unwritable_cache_still_searches(
    write_runbook: WriteRunbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("RELIABILITY_CACHE_DIR", str(blocker / "cache"))
    write_runbook("disk-full", ["DiskFull"])
    assert [r.id for r in cached_index(tmp_path / "runbooks").search("DiskFull")] == ["disk-full"]
