"""`runbook check`: the cross-checks between alerts, runbook_url annotations and runbook files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reliability.errors import InputError
from reliability.runbooks import check_runbooks, load_runbooks
from reliability.runbooks.check import check_links
from reliability.runbooks.rulefile import AlertRule

from .conftest import WriteRunbook

# The LLM service's SLO alerts (slos/llm-serving.yaml, scenarios/slos/llm-gameday.yaml), with the
# runbook their runbook_url must point at.
SLO_ALERTS = {
    "LLMHighErrorRate": "llm-availability",
    "LLMSlowTimeToFirstToken": "llm-latency",
    "LLMSlowTokenStream": "llm-latency",
    "LLMLowGoodput": "llm-latency",
    "LLMModelQualityDegraded": "model-quality",
}
# SLO files written on the retired lab names (gpu_node_*, inference_requests_total) whose runbooks
# were replaced by llm-availability/llm-latency: the only files allowed to fail the check until the
# lab twin replaces them. Anything else they do not excuse.
LEGACY_SLO_FILES = {"slos/inference-api.yaml", "scenarios/slos/inference-gameday.yaml"}


def rule_file(path: Path, alerts: dict[str, str | None]) -> Path:
    rules = []
    for name, url in alerts.items():
        rule = {"alert": name, "expr": "vector(1)", "labels": {"severity": "warning"}, "annotations": {}}
        if url is not None:
            rule["annotations"]["runbook_url"] = url
        rules.append(rule)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": rules}]}), encoding="utf-8")
    return path


def kinds(report_problems: list) -> set[tuple[str, str]]:
    return {(p.kind, p.subject) for p in report_problems}


def test_consistent_setup_passes(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull", "DiskFillingUp"])
    rule_file(tmp_path / "alerts" / "a.rules.yaml", {"DiskFull": "runbooks/disk-full.md"})
    rule_file(tmp_path / "alerts" / "b.yml", {"DiskFillingUp": "runbooks/disk-full.md#mitigation"})
    report = check_runbooks(tmp_path / "runbooks", None, tmp_path / "alerts")
    assert report.ok, report.problems
    assert sorted(a.name for a in report.alerts) == ["DiskFillingUp", "DiskFull"]


def test_every_kind_of_broken_link_is_listed(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull", "GhostAlert"])
    write_runbook("cpu-hot", ["CPUHot", "DiskFull"])
    write_runbook("half", ["Half"], body="## Meaning\n\nx\n")
    rule_file(
        tmp_path / "alerts" / "a.yaml",
        {
            "DiskFull": "runbooks/disk-full.md",
            "CPUHot": "runbooks/cpu-hot.md",
            "NoBook": "runbooks/no-book.md",  # no runbook lists it, and the file does not exist
            "NoUrl": None,
            "Half": "runbooks/disk-full.md",  # points at a runbook that does not list it
        },
    )
    report = check_runbooks(tmp_path / "runbooks", None, tmp_path / "alerts")
    assert not report.ok
    assert kinds(report.problems) == {
        ("unknown-alert", "disk-full"),  # GhostAlert
        ("ambiguous-alert", "DiskFull"),
        ("no-runbook", "NoBook"),
        ("unresolved-url", "NoBook"),
        ("no-runbook", "NoUrl"),
        ("no-runbook-url", "NoUrl"),
        ("url-mismatch", "Half"),
        ("missing-section", "half"),
    }


def test_base_url_is_stripped_to_find_the_file(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull"])
    base = "https://git.example.com/ops/blob/main/runbooks"
    rule_file(tmp_path / "alerts" / "a.yaml", {"DiskFull": f"{base}/disk-full.md"})
    assert check_runbooks(tmp_path / "runbooks", None, tmp_path / "alerts", base_url=base).ok
    report = check_runbooks(tmp_path / "runbooks", None, tmp_path / "alerts", base_url="https://other/")
    assert kinds(report.problems) == {("unresolved-url", "DiskFull")}


def test_malformed_rule_file_is_an_input_error(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull"])
    bad = tmp_path / "alerts" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: X\n        exp: up == 0\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as err:
        check_runbooks(tmp_path / "runbooks", None, tmp_path / "alerts")
    assert err.value.location.startswith(f"{bad}: groups[0].rules[0]")


def test_repository_platform_alerts_and_slo_contract_are_covered(repo: Path) -> None:
    """The shipped runbooks cover alerts/*.yaml and the SLO alert names of the contract."""
    from reliability.runbooks.check import rule_file_alerts, yaml_files

    alerts = rule_file_alerts(yaml_files(repo / "alerts")) + [
        AlertRule(name, "contract", f"runbooks/{rb_id}.md", None) for name, rb_id in SLO_ALERTS.items()
    ]
    problems = check_links(alerts, load_runbooks(repo / "runbooks"), "runbooks/")
    assert problems == []


def test_repository_check_with_compiled_slos(repo: Path) -> None:
    """The real `runbook check` of this repository: alerts/ and every SLO file of slos/ and
    scenarios/slos/, compiled, checked together (the game-day SLOs reuse the production names)."""
    from reliability.runbooks.check import compiled_slo_alerts, rule_file_alerts, yaml_files

    slo_files = [*yaml_files(repo / "slos"), *yaml_files(repo / "scenarios" / "slos")]
    alerts = [
        *compiled_slo_alerts(slo_files, "runbooks/"),
        *rule_file_alerts(yaml_files(repo / "alerts")),
    ]
    problems = check_links(alerts, load_runbooks(repo / "runbooks"), "runbooks/")
    legacy = {str(repo / f) + " (compiled)" for f in LEGACY_SLO_FILES}
    by_alert = {a.name: a.source for a in alerts}
    unexcused = [p for p in problems if by_alert.get(p.subject) not in legacy]
    assert unexcused == [], [str(p) for p in unexcused]
    compiled = {a.name: a.runbook_url for a in alerts if a.source not in legacy}
    assert {name: compiled.get(name) for name in SLO_ALERTS} == {
        name: f"runbooks/{rb}.md" for name, rb in SLO_ALERTS.items()
    }


def test_llm_slo_files_pass_the_check_on_their_own(repo: Path, tmp_path: Path) -> None:
    """`reliability runbook check --slos DIR` on the production SLOs passes as a user runs it."""
    slos = tmp_path / "slos"
    slos.mkdir()
    (slos / "llm-serving.yaml").write_bytes((repo / "slos" / "llm-serving.yaml").read_bytes())
    report = check_runbooks(repo / "runbooks", slos, repo / "alerts")
    assert report.ok, [str(p) for p in report.problems]
    assert set(SLO_ALERTS) <= {a.name for a in report.alerts}


def test_compiled_slo_alerts_are_checked(
    write_runbook: WriteRunbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SLO path of `check`, against a stand-in with the contract's signatures.

    A stand-in only because reliability.slo is being written in parallel; the real compiler is
    exercised by test_repository_check_with_compiled_slos once it exists.
    """
    import types

    calls: list[tuple[list[Path], str | None]] = []

    def load_slo_files(paths: list[Path]) -> list[str]:
        return [Path(p).stem for p in paths]

    def compile_rules(services: list[str], runbook_base_url: str | None = None) -> dict:
        calls.append(([Path(s) for s in services], runbook_base_url))
        rules = [
            {
                "alert": "ApiErrors",
                "expr": "vector(1)",
                "labels": {"sloth_severity": "page"},
                "annotations": {"runbook_url": f"{runbook_base_url.rstrip('/')}/{services[0]}.md"},
            }
        ]
        return {"groups": [{"name": "slo", "rules": rules}]}

    fake = types.SimpleNamespace(load_slo_files=load_slo_files, compile_rules=compile_rules)
    monkeypatch.setitem(__import__("sys").modules, "reliability.slo", fake)
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "api.yaml").write_text("x: 1\n", encoding="utf-8")
    write_runbook("api", ["ApiErrors"])
    base = "https://example.com/runbooks"
    report = check_runbooks(tmp_path / "runbooks", tmp_path / "slos", None, base_url=base)
    assert report.ok, report.problems
    assert calls == [([Path("api")], base)]
    assert [a.source for a in report.alerts] == [f"{tmp_path / 'slos' / 'api.yaml'} (compiled)"]
    # the same compiled alert once its runbook is gone
    (tmp_path / "runbooks" / "api.md").unlink()
    write_runbook("other")
    report = check_runbooks(tmp_path / "runbooks", tmp_path / "slos", None, base_url=base)
    assert kinds(report.problems) == {("no-runbook", "ApiErrors"), ("unresolved-url", "ApiErrors")}
