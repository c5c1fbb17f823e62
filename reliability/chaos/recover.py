"""`reliability recover`: undo every fault a crashed run left recorded as active in a ledger."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from reliability.chaos.ledger import LEDGER_NAME, FaultLedger, LedgerEntry
from reliability.chaos.state import default_lab_dir
from reliability.errors import InputError
from reliability.files import find_below

LAB_FAULTS = "reliability.lab.faults"


@dataclass(frozen=True)
class Recovered:
    ledger: Path
    entry_id: str
    fault: str
    undo: str
    ok: bool
    error: str = ""
    note: str = ""  # what the target said it did, e.g. that the lab was already gone


def find_ledgers(path: Path | None) -> list[Path]:
    """A ledger file, or every ledger in a lab dir / run dir (up to two levels down)."""
    base = Path(path) if path is not None else default_lab_dir()
    if not base.exists():
        raise InputError(str(base), "no such ledger file or directory")
    return find_below(base, LEDGER_NAME)


def _missing(entry: LedgerEntry) -> str:
    return (
        f"state file {entry.state_file} is missing, so the cluster cannot be identified and nothing "
        f"was undone: {entry.fault}({entry.args}) may still be in place. Put the state file back "
        "(it names the kubeconfig, context and cluster identity) and run `reliability recover` again, "
        "or undo it by hand"
    )


def recover(path: Path | None = None) -> list[Recovered]:
    """Undo active faults newest first (the reverse of injection), recording each success.

    Idempotent: a second call finds nothing active. A failed undo stays active so that a
    later `recover` retries it. A lab whose state file is gone took its faults with it; any other
    target's (a cluster's) missing state file is reported, never taken as "nothing to undo". The
    fault module re-checks the target's identity before undoing (a Kubernetes target: its
    kube-system UID).
    """
    out: list[Recovered] = []
    for ledger_path in find_ledgers(path):
        ledger = FaultLedger(ledger_path)
        for entry in reversed(ledger.active()):
            label = f"{entry.undo.func}({entry.undo.args})"
            if not Path(entry.state_file).exists():
                if entry.faults_module == LAB_FAULTS:
                    # The lab is gone with its faults; nothing left to undo.
                    ledger.record_cleared(entry.id, by="recover: lab state file gone")
                    out.append(Recovered(ledger_path, entry.id, entry.fault, label, True, note="lab gone"))
                else:
                    # A cluster outlives its state file: the fault may still be there. Kept active.
                    out.append(Recovered(ledger_path, entry.id, entry.fault, label, False, _missing(entry)))
                continue
            try:
                faults = importlib.import_module(entry.faults_module)
                done = getattr(faults, entry.undo.func)(Path(entry.state_file), **entry.undo.args)
            except Exception as exc:
                out.append(Recovered(ledger_path, entry.id, entry.fault, label, False, str(exc)))
                continue
            note = str(done.get("lab", "")) if isinstance(done, dict) else ""
            ledger.record_cleared(entry.id, by=f"recover: {label}" + (f" ({note})" if note else ""))
            out.append(Recovered(ledger_path, entry.id, entry.fault, label, True, note=note))
    return out
