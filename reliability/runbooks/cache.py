"""An on-disk cache of the search index: `runbook search` over a thousand runbooks skips parsing.

The cache is keyed by each runbook file's name, size and mtime and by the indexing code's own
files, so an edited runbook or a new version of the code rebuilds it. Any problem with the
cache (unreadable, corrupt, not writable) falls back to building the index, never to an error.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

from reliability.runbooks.search import SearchIndex

# pydantic and the loader are imported only on a cache miss: a hit must start fast.
_HERE = Path(__file__).resolve().parent
_INDEX_CODE = ("models.py", "search.py", "text.py", "loader.py")
_NOT_RUNBOOKS = {"readme.md", "index.md"}

CACHE_ENV = "RELIABILITY_CACHE_DIR"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reliability"


def cache_path(directory: Path) -> Path:
    key = hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"runbook-index-{key}.pickle"


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (path.name, st.st_mtime_ns, st.st_size)


def signature(files: list[Path]) -> tuple[Any, ...]:
    return (tuple(_stamp(_HERE / name) for name in _INDEX_CODE), tuple(_stamp(p) for p in files))


def _runbook_files(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        from reliability.runbooks.loader import runbook_files

        return runbook_files(directory)  # raises the usual InputError
    return sorted(p for p in directory.glob("*.md") if p.name.lower() not in _NOT_RUNBOOKS)


def _read(path: Path, sig: tuple[Any, ...]) -> SearchIndex | None:
    try:
        with path.open("rb") as fh:
            stored_sig, index = pickle.load(fh)
    except Exception:  # a broken cache is rebuilt, whatever broke it
        return None
    return index if stored_sig == sig and isinstance(index, SearchIndex) else None


def cached_index(directory: Path) -> SearchIndex:
    """The search index of a runbook directory, from the cache when no file changed."""
    files = _runbook_files(directory)
    sig = signature(files)
    path = cache_path(directory)
    index = _read(path, sig)
    if index is not None:
        return index
    from reliability.files import write_atomic
    from reliability.runbooks.loader import load_runbook

    index = SearchIndex.build(load_runbook(p) for p in files)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, pickle.dumps((sig, index), protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass  # read-only home, full disk: search still works, just slower next time
    return index
