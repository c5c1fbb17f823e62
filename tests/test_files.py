"""Reading input files (every problem one located InputError) and atomic writes (whole files only,
readable by others like any file the user writes)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reliability.errors import InputError
from reliability.files import (
    MAX_ALIAS_EXPANSION,
    check_output,
    load_json,
    load_yaml,
    parse_yaml_documents,
    write_atomic,
    write_output,
)


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


# ---- reading: every problem is one located InputError ------------------------------------------


def test_merge_keys_may_be_overridden_but_plain_keys_may_not_repeat(tmp_path: Path) -> None:
    assert parse_yaml_documents("b: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n", tmp_path / "f") == [
        {"b": {"x": 1, "y": 2}, "c": {"x": 3, "y": 2}}
    ]
    with pytest.raises(InputError, match=r"f:3:1: malformed YAML: duplicate key 'a' \(first on line 1\)"):
        parse_yaml_documents("a: 1\nb: 2\na: 3\n", tmp_path / "f")


def test_dates_stay_text_and_core_types_are_read_as_yaml_1_1(tmp_path: Path) -> None:
    (doc,) = parse_yaml_documents("d: 2026-13-45\nok: 2026-01-05\nn: 0x10\nb: yes\nf: .inf\n", tmp_path / "f")
    assert doc == {"d": "2026-13-45", "ok": "2026-01-05", "n": 16, "b": True, "f": float("inf")}


def test_shared_aliases_are_fine_until_they_explode(tmp_path: Path) -> None:
    ok = "a: &a [1, 2]\nb: [*a, *a, *a]\n"
    assert parse_yaml_documents(ok, tmp_path / "f") == [{"a": [1, 2], "b": [[1, 2]] * 3}]
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(InputError, match=f"more than {MAX_ALIAS_EXPANSION:,} values"):
        parse_yaml_documents("\n".join(levels) + "\n", tmp_path / "f")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("naïve: café\n".encode("latin-1"), "f:1: file is not UTF-8 text (byte 0xef at offset 2)"),
        ("a: 1\n".encode("utf-16"), "f: file is UTF-16 text"),
        (b"a: 1\nb: \x00\n", "f:2: file contains NUL bytes"),
        ("\ufeffa: 1\n".encode(), None),  # a UTF-8 BOM is fine
    ],
)
def test_encodings(tmp_path: Path, data: bytes, message: str | None) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    if message is None:
        assert load_yaml(path) == {"a": 1}
        return
    with pytest.raises(InputError) as err:
        load_yaml(path)
    assert message in str(err.value)


def test_json_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2,\n')
    with pytest.raises(InputError, match=r"x.json:2:1: malformed JSON"):
        load_json(path)
    path.write_text("[" * 100_000)
    with pytest.raises(InputError, match="nested too deeply"):
        load_json(path)


def test_output_checks(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("x")
    with pytest.raises(InputError, match="is a directory"):
        check_output(tmp_path, [spec])
    with pytest.raises(InputError, match="is the input file"):
        check_output(tmp_path / "." / "spec.yaml", [spec])
    with pytest.raises(InputError, match="not a writable directory"):
        write_output(spec / "rules.yaml", "y", [])
    write_output(tmp_path / "new" / "rules.yaml", "y", [spec])
    assert (tmp_path / "new" / "rules.yaml").read_text() == "y" and spec.read_text() == "x"
