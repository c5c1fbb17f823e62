"""The fault ledger: every injection is recorded (and fsynced) *before* it happens.

A crashed or SIGKILLed run can then be cleaned up by `reliability recover`, which undoes
every fault whose `inject` record has no matching `cleared` record. Recording before the
injection means a crash between the two leaves a ledger entry for a fault that may not exist;
undo operations are idempotent, so over-undoing is harmless while under-undoing is not.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability.chaos.jsonl import append_record, read_records, stamp

LEDGER_NAME = "fault-ledger.jsonl"


@dataclass(frozen=True)
class Undo:
    """How to undo a fault: a function of `reliability.lab.faults` and its keyword arguments."""

    func: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    fault: str
    args: dict[str, Any]
    state_file: str
    undo: Undo
    ts: float
    mono: float
    faults_module: str = "reliability.lab.faults"


def ledger_for_state(state_file: Path) -> Path:
    """The ledger lives next to the lab's state file, so anything that can reach the lab finds it."""
    return Path(state_file).resolve().parent / LEDGER_NAME


class FaultLedger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record_inject(
        self,
        fault: str,
        args: dict[str, Any],
        state_file: Path,
        undo: Undo,
        faults_module: str = "reliability.lab.faults",
    ) -> str:
        entry_id = uuid.uuid4().hex[:12]
        append_record(
            self.path,
            {
                **stamp(),
                "op": "inject",
                "id": entry_id,
                "fault": fault,
                "args": args,
                "state_file": str(Path(state_file).resolve()),
                "undo": {"func": undo.func, "args": undo.args},
                "faults_module": faults_module,
                "pid": os.getpid(),
            },
            durable=True,
        )
        return entry_id

    def record_cleared(self, entry_id: str, by: str) -> None:
        append_record(self.path, {**stamp(), "op": "cleared", "id": entry_id, "by": by}, durable=True)

    def entries(self) -> list[LedgerEntry]:
        out = []
        for r in read_records(self.path):
            if r.get("op") != "inject":
                continue
            undo = r.get("undo") or {}
            out.append(
                LedgerEntry(
                    id=str(r["id"]),
                    fault=str(r.get("fault", "")),
                    args=dict(r.get("args") or {}),
                    state_file=str(r.get("state_file", "")),
                    undo=Undo(str(undo.get("func", "heal")), dict(undo.get("args") or {})),
                    ts=float(r.get("ts", 0.0)),
                    mono=float(r.get("mono", 0.0)),
                    faults_module=str(r.get("faults_module") or "reliability.lab.faults"),
                )
            )
        return out

    def active(self) -> list[LedgerEntry]:
        """Injected and not yet cleared, oldest first."""
        cleared = {str(r.get("id")) for r in read_records(self.path) if r.get("op") == "cleared"}
        return [e for e in self.entries() if e.id not in cleared]
