"""What chaos tools' reports show, in report.html and postmortem.md alike: hypothesis before and
after, activities and rollbacks, guardrails, the client's errors, run metadata, previous runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reliability.report import build_reports
from tests.report.synthetic import ERROR_503, T0, Partition, write_partition_run


def page_text(run: Path) -> str:
    """report.html above the charts, tags stripped: what a reader sees."""
    page = (run / "report.html").read_text().split("<script")[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#x27;", "'")


def md(run: Path) -> str:
    return (run / "postmortem.md").read_text()


def test_hypothesis_activities_guardrails_errors_and_metadata_in_both_reports(tmp_path: Path) -> None:
    write_partition_run(tmp_path)
    result = build_reports(tmp_path)
    assert [(h.when, h.met) for h in result.hypothesis] == [("before", True), ("after", True)]
    assert [(a.phase, a.name, a.status) for a in result.activities] == [
        ("method", "partition", "succeeded"),
        ("rollback", "heal", "succeeded"),
    ]
    assert result.activities[0].duration_s == 0.06
    assert [(g.name, g.tripped) for g in result.guardrails] == [("error-ratio-over-50pct", False)]
    assert [(e.request, e.message, e.count) for e in result.client_errors] == [("chat", ERROR_503, 10)]
    assert result.meta.host == "gameday-host" and result.meta.versions["prometheus"] == "2.42.0"
    assert result.meta.versions["model"] == "tiny-chat 1.0" and result.meta.journal_status == "completed"
    html, text = page_text(tmp_path), md(tmp_path)
    for both in (html, text):
        assert "Chaos Toolkit status" in both and "completed" in both
        assert "service-answers: succeeded" in both
        assert "partition" in both and "heal" in both
        assert "error-ratio-over-50pct" in both and "held" in both
        assert ERROR_503 in both
        assert "gameday-host" in both and "tiny-chat 1.0" in both and "2.42.0" in both
    assert "| before | 00:00:18.000 | met |" in text
    assert re.search(r"\| rollback \| heal \| action \| succeeded \| 00:00:40\.0[01]\d \| 0\.050 \|", text)


def test_a_tripped_guardrail_and_a_failed_rollback_from_the_timeline_alone(tmp_path: Path) -> None:
    """A killed experiment leaves no journal: the timeline tells the same story."""
    write_partition_run(tmp_path)
    (tmp_path / "journal.json").unlink()
    records = [
        {"ts": T0 + 30, "event": "guardrail_tripped", "name": "error-ratio-over-50pct", "value": 0.61,
         "above": 0.5},
        {"ts": T0 + 40.5, "event": "activity_start", "phase": "rollback", "type": "action", "name": "undo-2"},
        {"ts": T0 + 41.0, "event": "activity_end", "phase": "rollback", "type": "action", "name": "undo-2",
         "status": "failed", "error": "HarnessError: lab state unreadable"},
    ]  # fmt: skip
    with (tmp_path / "timeline.jsonl").open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    result = build_reports(tmp_path)
    tripped = result.guardrails[0]
    assert tripped.tripped and tripped.value == 0.61 and tripped.ts == T0 + 30
    failed = next(a for a in result.activities if a.name == "undo-2")
    assert (failed.phase, failed.status, failed.duration_s) == ("rollback", "failed", 0.5)
    assert failed.error == "HarnessError: lab state unreadable"
    assert result.meta.journal_status is None
    for both in (page_text(tmp_path), md(tmp_path)):
        assert "tripped at 00:00:30.000 UTC (value 0.610)" in both
        assert "HarnessError: lab state unreadable" in both
        assert "unknown (no journal.json)" in both


def test_previous_runs_beside_the_run_show_as_a_trend_in_both_reports(tmp_path: Path) -> None:
    older, newer = tmp_path / "region-partition-a", tmp_path / "region-partition-b"
    write_partition_run(older, Partition(failover_s=21))
    info = json.loads((older / "run.json").read_text())
    info["started_ts"] -= 86400
    (older / "run.json").write_text(json.dumps(info))
    write_partition_run(newer, Partition(failover_s=24))
    build_reports(older)
    build_reports(newer)
    # The older run has nothing before it; the newer one shows both.
    assert "Previous runs" not in md(older) and "Previous runs" not in page_text(older)
    trend = md(newer).split("## Previous runs of region-partition\n")[1].split("\n## ")[0]
    assert trend.splitlines()[0] == "| Objective | region-partition-a | this run | Change |"
    row = next(line for line in trend.splitlines() if line.startswith("| rto:requests-availability |"))
    assert row == "| rto:requests-availability | 0.6 s | 3.6 s | +3 |"
    assert "Previous runs of region-partition" in page_text(newer)
    assert "0.6 s 3.6 s +3" in page_text(newer)


def test_the_gpu_failure_chain_stage_by_stage_in_both_reports(tmp_path: Path) -> None:
    from tests.report.synthetic import Truth, write_run

    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    events = [
        {"ts": T0 + 20.5, "event": "node_xid", "node": "us-east-1", "xid": 79},
        {"ts": T0 + 23.0, "event": "gateway_server_down", "gateway": "us-east", "server": "us-east-1"},
        {"ts": T0 + 41.0, "event": "replacement_ready", "node": "us-east-4"},
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    result = build_reports(tmp_path)
    assert [(s.stage, s.ground_truth_s, s.prometheus_s) for s in result.stages] == [
        ("Xid reported", 0.5, None),
        ("gateway ejected the node", 3.0, None),
        ("replacement ready", 21.0, None),
        ("page alert (GPUNodeDown)", None, 6.0),
    ]
    html = (tmp_path / "report.html").read_text().split("<script")[0]
    table = html.split("<table id='stages'>")[1].split("</table>")[0]
    assert "<td>gateway ejected the node</td><td>3.0</td><td>n/a</td>" in table
    assert "<td>page alert (GPUNodeDown)</td><td>n/a</td><td>6.0</td>" in table
    assert "| gateway ejected the node | 3.0 | n/a | events.jsonl: gateway_server_down |" in md(tmp_path)
