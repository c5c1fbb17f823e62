"""A stand-in for `reliability.lab.faults` in chaos-layer tests: same functions over a state
file (a valid `LabState`, so probes that read it work), recording which faults are active in its
`faults` instead of breaking real processes.

It only exercises our side of the boundary (ledger, rollbacks, recover, signals); the
end-to-end tests in tests/gameday/ use the real lab.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _update(state: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    lock = Path(state).with_suffix(".lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        data = json.loads(Path(state).read_text()) if Path(state).exists() else {}
        data.setdefault("faults", {})
        change(data["faults"])
        Path(state).write_text(json.dumps(data))
        return data


def kill_node(state: Path, node: str, mode: str = "sigkill") -> dict[str, Any]:
    return _update(state, lambda f: f.__setitem__(f"node:{node}", {"fault": "kill_node", "mode": mode}))


def partition_region(state: Path, region: str) -> dict[str, Any]:
    return _update(state, lambda f: f.__setitem__(f"partition:{region}", {"fault": "partition_region"}))


def heal_partition(state: Path, region: str) -> dict[str, Any]:
    return _update(state, lambda f: f.pop(f"partition:{region}", None))


def fail_model(state: Path, target: str, mode: str = "errors", **fields: Any) -> Any:
    return _update(state, lambda f: f.__setitem__(f"model:{target}", {"fault": "fail_model", "mode": mode}))


def deploy_model(state: Path, target: str, version: str, failure: str = "errors") -> Any:
    fault = {"fault": "deploy_model", "version": version, "failure": failure}
    return _update(state, lambda f: f.__setitem__(f"model:{target}", fault))


def stall_replacements(state: Path, region: str) -> dict[str, Any]:
    return _update(state, lambda f: f.__setitem__(f"stall:{region}", {"fault": "stall_replacements"}))


def unstall_replacements(state: Path, region: str) -> dict[str, Any]:
    return _update(state, lambda f: f.pop(f"stall:{region}", None))


def restore_model(state: Path, target: str) -> dict[str, Any]:
    return _update(state, lambda f: f.pop(f"model:{target}", None))


def heal(state: Path) -> dict[str, Any]:
    return _update(state, lambda f: f.clear())


def lab_status(state: Path) -> dict[str, Any]:
    data = json.loads(Path(state).read_text()) if Path(state).exists() else {}
    return {"faults": data.get("faults", {}), "store": {"primary": "us-east"}}


def active_faults(state: Path) -> dict[str, Any]:
    return lab_status(state)["faults"]
