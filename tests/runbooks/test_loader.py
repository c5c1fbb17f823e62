"""Runbook files: front matter validation with located errors, sections, first mitigation step."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability.errors import InputError
from reliability.runbooks import load_runbook, load_runbooks, runbook_json_schema
from reliability.runbooks.models import REQUIRED_SECTIONS, first_list_item, split_sections

from .conftest import BODY, WriteRunbook


def test_valid_runbook_parses(write_runbook: WriteRunbook) -> None:
    rb = load_runbook(write_runbook("disk-full", ["DiskFull"], tags="[disk, storage]"))
    assert rb.id == "disk-full"
    assert rb.alerts == ["DiskFull"]
    assert rb.meta.tags == ["disk", "storage"]
    assert rb.missing_sections == []
    assert rb.first_mitigation_step == "Fix it with `fix --now`."


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        ("no front matter\n" + BODY, "(front matter)", "missing YAML front matter"),
        ("---\nid: x\n" + BODY, "(front matter)", "not closed"),
        ("---\nid: x\ntitle: a: b\n---\n" + BODY, "x.md:3", "malformed YAML"),
        ("---\n- a list\n---\n", "(front matter)", "must be a YAML mapping"),
    ],
)
def test_malformed_front_matter_names_the_file(
    tmp_path: Path, text: str, location: str, message: str
) -> None:
    path = tmp_path / "x.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_runbook(path)
    assert str(path.name) in err.value.location and location in err.value.location
    assert message in err.value.message
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"owner": "bob"}, "owner", "unknown field"),
        ({"severity": "catastrophic"}, "severity", "Input should be"),
        ({"last_reviewed": "last tuesday"}, "last_reviewed", "date"),
    ],
)
def test_bad_field_names_file_and_field(
    write_runbook: WriteRunbook, extra: dict[str, str], field: str, message: str
) -> None:
    # `extra` can also replace a valid field
    path = write_runbook("svc-down", ["SvcDown"], **extra)
    with pytest.raises(InputError) as err:
        load_runbook(path)
    assert err.value.location == f"{path}: {field}"
    assert message in err.value.message


def test_alert_name_must_be_a_prometheus_name(write_runbook: WriteRunbook) -> None:
    path = write_runbook("svc-down", ["Svc Down!"])
    with pytest.raises(InputError) as err:
        load_runbook(path)
    assert err.value.location == f"{path}: alerts[0]"


def test_id_must_match_file_name(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    path = write_runbook("svc-down")
    renamed = path.rename(path.with_name("other.md"))
    with pytest.raises(InputError) as err:
        load_runbook(renamed)
    assert err.value.location == f"{renamed}: id"


def test_load_runbooks_skips_readme_and_reports_missing_dir(
    write_runbook: WriteRunbook, tmp_path: Path
) -> None:
    write_runbook("b-one")
    write_runbook("a-two")
    (tmp_path / "runbooks" / "README.md").write_text("# index\n", encoding="utf-8")
    assert [rb.id for rb in load_runbooks(tmp_path / "runbooks")] == ["a-two", "b-one"]
    with pytest.raises(InputError, match="not found"):
        load_runbooks(tmp_path / "nope")


def test_headings_inside_code_blocks_are_not_sections() -> None:
    body = "## Diagnosis\n\n```shell\n## not a heading\necho hi\n```\n\n## Mitigation\n\n- do it\n"
    sections = split_sections(body)
    assert list(sections) == ["Diagnosis", "Mitigation"]
    assert "## not a heading" in sections["Diagnosis"]


def test_first_step_keeps_its_indented_command() -> None:
    text = "Intro.\n\n1. Drain the node:\n\n   ```shell\n   kubectl drain n1\n   ```\n\n2. Next.\n"
    assert first_list_item(text) == "Drain the node:\n\n```shell\nkubectl drain n1\n```"
    assert first_list_item("Just do the thing.\n\nThen more.") == "Just do the thing."


def test_repository_runbooks_are_complete(repo: Path) -> None:
    runbooks = load_runbooks(repo / "runbooks")
    assert len(runbooks) >= 10
    for rb in runbooks:
        assert rb.missing_sections == [], rb.id
        assert rb.first_mitigation_step, rb.id
        # concrete commands, not prose only
        assert "```" in rb.sections["Diagnosis"] or "```" in rb.sections["Mitigation"], rb.id
    assert set(REQUIRED_SECTIONS) <= set(runbooks[0].sections)


def test_json_schema_describes_front_matter() -> None:
    schema = runbook_json_schema()
    assert schema["additionalProperties"] is False
    assert {"id", "title", "severity", "owners", "last_reviewed"} <= set(schema["required"])
    assert "alerts" in schema["properties"]
