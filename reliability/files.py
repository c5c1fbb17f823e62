"""File I/O shared by every command: reading YAML and JSON with located errors, atomic writes.

Every file a user hands the harness goes through `read_text`, `load_yaml_documents` or `load_json`,
so hostile input (another encoding, random bytes, duplicate keys, an alias bomb, 100k-deep nesting,
numbers Python cannot hold) is one InputError naming the file and line, never a traceback.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import tempfile
import typing
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError

from reliability.errors import InputError

M = TypeVar("M", bound=BaseModel)

# Input files are specs, not data sets: anything larger is a mistake (or /dev/zero).
MAX_FILE_BYTES = 64 * 1024 * 1024
# Deeper than any real spec; past it json/pydantic/our own walkers would recurse too far.
MAX_DEPTH = 100
# Values a document may gain through YAML aliases beyond what is written out (billion laughs).
MAX_ALIAS_EXPANSION = 1_000_000

_STR_TAG = "tag:yaml.org,2002:str"
_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}

# libyaml's parser: fast, and it refuses nesting deeper than 1,000 levels itself (the pure-Python
# one recurses until RecursionError). Without libyaml the fallback is caught below.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """Safe loading that produces JSON-like data only and refuses what YAML would let slip through."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # The last duplicate silently winning (`objective: 0.5` below `objective: 99.9`) is how a
        # reviewed value gets replaced unnoticed: refuse it, naming both lines.
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    continue  # the base class reports unhashable keys
                try:
                    if key in first_line:
                        raise ConstructorError(
                            None,
                            None,
                            f"duplicate key {key!r} (first on line {first_line[key] + 1})",
                            key_node.start_mark,
                        )
                    first_line[key] = key_node.start_mark.line
                except TypeError:
                    continue
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # int() of more than 4,300 digits, `!!float abc`, `!!bool maybe`: name the line.
            tag = str(node.tag).rsplit(":", 1)[-1]
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "digits" in detail and tag == "int":
                detail = "more than 4,300 digits"
            detail = detail[:120]
            raise ConstructorError(None, None, f"invalid {tag} value ({detail})", node.start_mark) from exc

    def construct_fast(self, root: yaml.Node) -> Any:
        """The document of `root`, like construct_document but without its generator machinery
        (5x faster on a 1,000-SLO file). Merge keys, unhashable keys and tags other than the core
        ones raise _NotPlain: the caller then uses construct_document."""
        memo: dict[int, Any] = {}
        # Containers are created empty and memoised before their children, so aliases share one
        # object (and a recursive alias gives a cyclic value, which check_shape reports).
        todo: list[tuple[yaml.Node, Any]] = []

        def make(node: yaml.Node) -> Any:
            found = memo.get(id(node), _MISSING)
            if found is not _MISSING:
                return found
            if isinstance(node, yaml.ScalarNode):
                if node.tag == _STR_TAG:
                    value: Any = node.value
                elif node.tag in _CORE_SCALARS:
                    value = self.construct_object(node)
                else:
                    raise _NotPlain
            elif isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
                value = {}
                todo.append((node, value))
            elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
                value = []
                todo.append((node, value))
            else:
                raise _NotPlain
            memo[id(node)] = value
            return value

        result = make(root)
        while todo:
            node, value = todo.pop()
            if isinstance(value, list):
                value.extend(make(child) for child in node.value)
                continue
            lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    raise _NotPlain
                key = make(key_node)
                if key in lines:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first on line {lines[key] + 1})",
                        key_node.start_mark,
                    )
                lines[key] = key_node.start_mark.line
                value[key] = make(value_node)
        self.constructed_objects = {}
        return result


_MISSING = object()
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_CORE_SCALARS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "timestamp"))


class _NotPlain(Exception):
    """A document the fast constructor leaves to construct_document."""


# Timestamps stay the text the user wrote (`2026-13-45` is then a located pydantic error, not a
# crash in the YAML constructor); sets, ordered maps, pairs and binary are not JSON-like data and
# no file format here has them.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)
for _tag in ("set", "omap", "pairs", "binary"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _Loader.construct_undefined)


def read_text(path: Path | str, what: str = "file") -> str:
    """The file as text: UTF-8 (a UTF-8 BOM is allowed); anything else is a located InputError."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(str(path), f"cannot read {what}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise InputError(str(path), f"{what} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            raise InputError(str(path), f"{what} is {name} text; save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}:{line}",
            f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8",
        ) from exc
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InputError(
            f"{path}:{line}", f"{what} contains NUL bytes: not UTF-8 text (UTF-16?); save it as UTF-8"
        )
    return text.removeprefix("\ufeff")


def _yaml_error(path: Path, exc: yaml.YAMLError, text: str, line_offset: int = 0) -> InputError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1 + line_offset}:{mark.column + 1}" if mark is not None else str(path)
    if isinstance(exc, yaml.reader.ReaderError):
        position = exc.position if isinstance(exc.position, int) else 0
        where = f"{path}:{text.count(chr(10), 0, position) + 1 + line_offset}"
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        return InputError(where, f"malformed YAML: control character U+{char:04X} is not allowed")
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return InputError(where, f"malformed YAML: {problem}")


def parse_yaml_documents(text: str, path: Path | str, line_offset: int = 0) -> list[Any]:
    """All YAML documents of `text` (read from `path`), empty ones dropped; every problem -> InputError.

    `line_offset`: lines before `text` in the file (front matter), so errors point at the file's line.
    """
    path = Path(path)
    loader = _Loader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            try:
                doc = loader.construct_fast(node)
            except _NotPlain:
                doc = loader.construct_document(node)
            if doc is not None:
                docs.append(doc)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc, text, line_offset) from exc
    except RecursionError as exc:  # only without libyaml: the pure-Python composer recurses
        raise InputError(str(path), f"malformed YAML: nested deeper than {MAX_DEPTH} levels") from exc
    finally:
        loader.dispose()
    for doc in docs:
        check_shape(doc, path)
    return docs


def load_yaml_documents(path: Path | str) -> list[Any]:
    """All YAML documents of a file; malformed YAML becomes an InputError naming the line."""
    return parse_yaml_documents(read_text(path), path)


def load_yaml(path: Path | str) -> Any:
    """The single YAML document of a file."""
    docs = load_yaml_documents(path)
    if len(docs) != 1:
        raise InputError(str(path), f"expected one YAML document, found {len(docs)}")
    return docs[0]


def load_json(path: Path | str, what: str = "file") -> Any:
    """One JSON document; malformed JSON (or nesting too deep to walk) is a located InputError."""
    text = read_text(path, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise InputError(str(path), "malformed JSON: nested too deeply") from exc
    except ValueError as exc:
        raise InputError(str(path), f"malformed JSON: {str(exc).splitlines()[0][:120]}") from exc
    check_shape(data, Path(path))
    return data


def check_shape(data: Any, path: Path | str) -> None:
    """Refuse data no spec has: deeper than MAX_DEPTH, cyclic (a recursive YAML alias), or aliases
    expanding to more than MAX_ALIAS_EXPANSION values. Shared values are counted as often as they
    are reachable, but computed once, so a billion laughs is found in microseconds."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_ids: set[int] = set()
    unique = 0

    def too_deep(loc: tuple[Any, ...]) -> InputError:
        where = format_loc(loc[:3]) + ("..." if len(loc) > 3 else "")
        return InputError(f"{path}: {where}", f"nested deeper than {MAX_DEPTH} levels")

    # Iterative post-order walk: (value, path, depth, children; None when first reached)
    stack: list[tuple[Any, tuple[Any, ...], int, list[tuple[Any, Any]] | None]] = [(data, (), 0, None)]
    while stack:
        value, loc, depth, pending = stack.pop()
        if not isinstance(value, dict | list):
            continue
        key = id(value)
        if pending is None:
            if key in size:  # shared through an alias: already measured, but maybe deeper here
                if depth + height[key] > MAX_DEPTH:
                    raise too_deep(loc)
                continue
            if key in open_ids:
                raise InputError(
                    f"{path}: {format_loc(loc)}", "recursive YAML alias (a value contains itself)"
                )
            if depth >= MAX_DEPTH:
                raise too_deep(loc)
            open_ids.add(key)
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            # Each container and its scalars counted once: what the file spells out.
            unique += 1 + sum(not isinstance(child, dict | list) for _, child in items)
            stack.append((value, loc, depth, items))
            stack.extend((child, (*loc, k), depth + 1, None) for k, child in reversed(items))
            continue
        total, tallest = 1, 0
        for _, child in pending:
            if isinstance(child, dict | list):
                total += size[id(child)]
                tallest = max(tallest, height[id(child)])
            else:
                total += 1
        open_ids.discard(key)
        size[key], height[key] = total, tallest + 1
        if depth + height[key] > MAX_DEPTH:
            raise too_deep(loc)
        if total - unique > MAX_ALIAS_EXPANSION:
            raise InputError(
                f"{path}: {format_loc(loc)}",
                f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION:,} values (an alias bomb?)",
            )


def format_loc(loc: tuple[Any, ...]) -> str:
    """('slos', 0, 'objective') -> 'slos[0].objective'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap(tp: Any) -> list[Any]:
    """The model types a field annotation can hold (through Optional, list, dict, Annotated)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (list, tuple, set, frozenset):
        return [x for a in typing.get_args(tp) for x in _unwrap(a)]
    if origin is dict:
        args = typing.get_args(tp)
        return _unwrap(args[1]) if len(args) == 2 else []
    if origin is not None:  # Union, X | None
        return [x for a in typing.get_args(tp) for x in _unwrap(a)]
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names (and aliases) of the model found at `loc`, for 'did you mean' hints."""
    models: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for m in models:
            for name, info in m.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_unwrap(info.annotation))
        models = nxt
    names: list[str] = []
    for m in models:
        for name, info in m.model_fields.items():
            names.append(info.alias or name)
    return names


def _pick(errors: list[Any]) -> Any:
    """The error that explains the others: an unknown key (a typo) explains 'field required'."""
    for err in errors:
        if err["type"] == "extra_forbidden":
            return err
    return errors[0]


def _message(err: Any, errors: list[Any], model: type[BaseModel] | None) -> str:
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        loc = tuple(err["loc"])
        candidates = [
            str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]
        ]
        if model is not None:
            candidates += _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), candidates, n=1, cutoff=0.75)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if isinstance(value, float) and not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else "infinity"
        return f"{shown} is not allowed (a finite number is required)"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validation_error(
    path: Path | str, exc: ValidationError, prefix: str = "", model: type[BaseModel] | None = None
) -> InputError:
    """The most telling pydantic error as one line: 'FILE: FIELD: message'."""
    errors = exc.errors()
    err = _pick(errors)
    field = format_loc(tuple(err["loc"]))
    if prefix:
        field = f"{prefix}.{field}" if field != "(top level)" else prefix
    msg = _message(err, errors, model)
    more = len(errors) - 1
    if err["type"] == "extra_forbidden" and "did you mean" in msg:
        # The field the typo was meant to be is reported missing too: that is the same mistake.
        meant = msg.split("did you mean ", 1)[1].split("'")[1]
        parent = tuple(err["loc"][:-1])
        more -= sum(1 for e in errors if e["type"] == "missing" and tuple(e["loc"]) == (*parent, meant))
    if more:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return InputError(f"{path}: {field}", msg)


def parse_model(model: type[M], data: Any, path: Path | str, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, exc, prefix, model) from exc
    except RecursionError as exc:
        raise InputError(str(path), f"nested deeper than {MAX_DEPTH} levels") from exc


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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path: Path, inputs: Iterable[Path | str] = (), option: str = "-o") -> None:
    """Before any work: an output path the user chose must be a writable file that is not an input."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}", "is a directory; give a file path")
    for inp in inputs:
        if path.exists() and _same_file(path, Path(inp)):
            raise InputError(f"{option} {path}", f"is the input file {inp}; refusing to overwrite it")
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}", f"cannot write here ({parent} is not a writable directory)")


def write_output(
    path: Path, content: str | bytes, inputs: Iterable[Path | str] = (), option: str = "-o"
) -> None:
    """`write_atomic` for a path the user chose: every failure is an InputError naming the option."""
    inputs = list(inputs)
    check_output(path, inputs, option)
    try:
        write_atomic(path, content)
    except OSError as exc:
        raise InputError(f"{option} {path}", f"cannot write: {exc.strerror or exc}") from exc


def write_json_atomic(path: Path, data: Mapping[str, Any] | list[Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def find_below(base: Path, name: str) -> list[Path]:
    """`base` itself when it is a file, else every file called `name` in it or up to two levels
    below (a lab dir, a run dir, a directory of runs), sorted."""
    base = Path(base)
    if base.is_file():
        return [base]
    return sorted({p for pattern in (name, f"*/{name}", f"*/*/{name}") for p in base.glob(pattern)})
