"""What the Kubernetes faults changed, exactly, so that an undo touches only that.

The chaos actions record each injection in the fault ledger before calling a fault function (with
the undo function and its arguments: `heal`, `heal_partition(region)`, `restore_model(target)`).
What those undo functions must know - which nodes, whether each was schedulable before, which
taint, the NetworkPolicy's namespace/name/uid, the patched object with its path, old and new value -
is only known once the fault function has looked at the cluster. The fault function writes it
here, next to the state file (`k8s-changes.jsonl`), fsynced, *before* sending the change; the undo
functions read it. An entry is `intent` (about to be sent), then `applied` (with what the server
answered, e.g. the NetworkPolicy's uid), then `undone`, `not_applied` (the server refused it: nothing
to undo) or `needs_human` (the object was changed by someone else since: left alone).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from reliability.chaos.jsonl import append_record, read_records, stamp

JOURNAL_NAME = "k8s-changes.jsonl"


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: str


class NodeDrain(_Change):
    """Cordon + evictions (chaosk8s drain_nodes of one named node)."""

    type: Literal["drain"] = "drain"
    node: str
    node_uid: str
    was_unschedulable: bool


class NodeTaint(_Change):
    type: Literal["taint"] = "taint"
    node: str
    node_uid: str
    taint: dict[str, str]


class Partition(_Change):
    type: Literal["networkpolicy"] = "networkpolicy"
    namespace: str
    name: str
    uid: str | None = None


class ObjectPatch(_Change):
    type: Literal["patch"] = "patch"
    target: str  # what fail_model was asked for (a region or an object), for restore_model(target)
    mode: str
    kind: str
    api_version: str
    namespace: str
    name: str
    uid: str
    path: str
    before_present: bool
    before: Any = None
    after: Any = None
    guard: list[dict[str, Any]] = Field(default_factory=list)


Change = Annotated[NodeDrain | NodeTaint | Partition | ObjectPatch, Field(discriminator="type")]
_CHANGE = TypeAdapter(Change)
FINAL = {"undone", "not_applied"}


@dataclass(frozen=True)
class Entry:
    id: str
    fault: str
    change: Change
    status: str  # intent | applied | needs_human (active) ; undone | not_applied (final)
    note: str = ""


def journal_for_state(state_file: Path) -> Path:
    return Path(state_file).resolve().parent / JOURNAL_NAME


class Journal:
    def __init__(self, state_file: Path) -> None:
        self.path = journal_for_state(state_file)

    def _append(self, op: str, entry_id: str, **fields: Any) -> None:
        append_record(self.path, {**stamp(), "op": op, "id": entry_id, **fields}, durable=True)

    def intent(self, fault: str, change: Change) -> str:
        entry_id = uuid.uuid4().hex[:12]
        self._append("intent", entry_id, fault=fault, change=change.model_dump(mode="json"))
        return entry_id

    def new_id(self) -> str:
        return uuid.uuid4().hex[:12]

    def intent_with_id(self, entry_id: str, fault: str, change: Change) -> str:
        self._append("intent", entry_id, fault=fault, change=change.model_dump(mode="json"))
        return entry_id

    def applied(self, entry_id: str, change: Change) -> None:
        self._append("applied", entry_id, change=change.model_dump(mode="json"))

    def finish(self, entry_id: str, op: Literal["undone", "not_applied", "needs_human"], note: str) -> None:
        self._append(op, entry_id, note=note)

    def entries(self) -> list[Entry]:
        found: dict[str, Entry] = {}
        for r in read_records(self.path):
            entry_id, op = str(r.get("id", "")), r.get("op")
            if op == "intent":
                found[entry_id] = Entry(
                    entry_id, str(r.get("fault", "")), _CHANGE.validate_python(r["change"]), "intent"
                )
            elif entry_id in found:
                e = found[entry_id]
                if op == "applied":
                    found[entry_id] = Entry(e.id, e.fault, _CHANGE.validate_python(r["change"]), "applied")
                elif op in ("undone", "not_applied", "needs_human"):
                    found[entry_id] = Entry(e.id, e.fault, e.change, str(op), str(r.get("note", "")))
        return list(found.values())

    def active(self) -> list[Entry]:
        """Changes that may still be on the cluster, oldest first."""
        return [e for e in self.entries() if e.status not in FINAL]
