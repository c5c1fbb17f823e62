"""Reading `runbooks/*.md`: front matter -> RunbookMeta, with one-line errors naming file and field."""

from __future__ import annotations

from pathlib import Path

from reliability.errors import InputError
from reliability.files import parse_model, parse_yaml_documents, read_text
from reliability.runbooks.models import Runbook, RunbookMeta, split_sections

# README/index pages may sit next to the runbooks; they are not runbooks (cache.py agrees).
_NOT_RUNBOOKS = {"readme.md", "index.md"}


def split_front_matter(text: str, path: Path) -> tuple[str, str, int]:
    """(front matter YAML, body, line number where the body starts)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise InputError(f"{path}: (front matter)", "missing YAML front matter (a first line '---')")
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :]), i + 2
    raise InputError(f"{path}: (front matter)", "front matter is not closed by a '---' line")


def parse_runbook(text: str, path: Path) -> Runbook:
    front, body, _ = split_front_matter(text, path)
    # line_offset 1: line 1 of the file is the opening '---'.
    docs = parse_yaml_documents(front, path, line_offset=1)
    data = docs[0] if len(docs) == 1 else None
    if not isinstance(data, dict):
        raise InputError(f"{path}: (front matter)", "front matter must be a YAML mapping")
    meta = parse_model(RunbookMeta, data, path)
    if meta.id != path.stem:
        raise InputError(f"{path}: id", f"'{meta.id}' must equal the file name '{path.stem}'")
    return Runbook(meta=meta, body=body, path=path, sections=split_sections(body))


def load_runbook(path: Path) -> Runbook:
    path = Path(path)
    return parse_runbook(read_text(path, "runbook"), path)


def runbook_files(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(str(directory), "runbook directory not found")
    return sorted(p for p in directory.glob("*.md") if p.name.lower() not in _NOT_RUNBOOKS)


def load_runbooks(directory: Path) -> list[Runbook]:
    """Every runbook of a directory, sorted by id; the first malformed file raises InputError."""
    return [load_runbook(p) for p in runbook_files(directory)]
