"""File I/O shared by every command: YAML loading with located errors, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from reliability.errors import InputError

M = TypeVar("M", bound=BaseModel)


def load_yaml_documents(path: Path) -> list[Any]:
    """All YAML documents of a file; malformed YAML becomes an InputError naming the line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read file: {exc.strerror or exc}") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(where, f"malformed YAML: {problem}") from exc
    return docs


def load_yaml(path: Path) -> Any:
    """The single YAML document of a file."""
    docs = load_yaml_documents(path)
    if len(docs) != 1:
        raise InputError(str(path), f"expected one YAML document, found {len(docs)}")
    return docs[0]


def format_loc(loc: tuple[Any, ...]) -> str:
    """('slos', 0, 'objective') -> 'slos[0].objective'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validation_error(path: Path | str, exc: ValidationError, prefix: str = "") -> InputError:
    """The first pydantic error as one line: 'FILE: FIELD: message'."""
    err = exc.errors()[0]
    field = format_loc(tuple(err["loc"]))
    if prefix:
        field = f"{prefix}.{field}" if field != "(top level)" else prefix
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return InputError(f"{path}: {field}", msg)


def parse_model(model: type[M], data: Any, path: Path | str, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, exc, prefix) from exc


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once at import, before any thread writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write via a temporary file in the same directory and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp makes the file 0600; reports and rule files are for others to read (CI artifacts,
        # a web server), so give it the mode a plain open() would have.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Mapping[str, Any] | list[Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def find_below(base: Path, name: str) -> list[Path]:
    """`base` itself when it is a file, else every file called `name` in it or up to two levels
    below (a lab dir, a run dir, a directory of runs), sorted."""
    base = Path(base)
    if base.is_file():
        return [base]
    return sorted({p for pattern in (name, f"*/{name}", f"*/*/{name}") for p in base.glob(pattern)})
