"""The fault ledger: what a crashed run leaves for `reliability recover`."""

from __future__ import annotations

from pathlib import Path

from reliability.chaos.ledger import FaultLedger, Undo, ledger_for_state


def test_active_is_injected_minus_cleared(tmp_path: Path) -> None:
    ledger = FaultLedger(tmp_path / "fault-ledger.jsonl")
    state = tmp_path / "state.json"
    a = ledger.record_inject(
        "partition_region", {"region": "eu-west"}, state, Undo("heal_partition", {"region": "eu-west"})
    )
    b = ledger.record_inject(
        "fail_model", {"target": "us-east"}, state, Undo("restore_model", {"target": "us-east"})
    )
    assert [e.id for e in ledger.active()] == [a, b]
    ledger.record_cleared(a, by="test")
    active = ledger.active()
    assert [e.id for e in active] == [b]
    assert active[0].undo == Undo("restore_model", {"target": "us-east"})
    assert active[0].state_file == str(state.resolve())


def test_torn_last_line_from_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "fault-ledger.jsonl"
    ledger = FaultLedger(path)
    a = ledger.record_inject("kill_node", {"node": "n1"}, tmp_path / "s.json", Undo("heal"))
    with path.open("a") as fh:
        fh.write('{"op": "cleared", "id": "')  # killed mid-write
    assert [e.id for e in ledger.active()] == [a]


def test_missing_ledger_means_nothing_active(tmp_path: Path) -> None:
    assert FaultLedger(tmp_path / "none.jsonl").active() == []


def test_ledger_sits_next_to_the_lab_state(tmp_path: Path) -> None:
    assert (
        ledger_for_state(tmp_path / "lab" / "state.json")
        == (tmp_path / "lab" / "fault-ledger.jsonl").resolve()
    )
