"""Faults over a lab's state file, from any process (Chaos Toolkit providers, `reliability recover`,
tests): each call asks the lab's supervisor, which applies the fault and logs it as ground truth.

`target` of fail_model/restore_model/deploy_model is a node (`us-east-1`), a region or `all`.
Node fault modes of `fail_model` (docs/twin.md 1.4): errors (rate), latency (latency_ms), wrong
(rate), bad_version (version), gray (hang), slow_decode (factor), kv_cache_cut (fraction).
`kill_node` modes: sigkill (the host is lost) or xid<code> (the GPU reports an Xid: 79, 48, 94...).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from reliability.errors import HarnessError
from reliability.lab.lab import down_from_state, supervisor_alive
from reliability.lab.state import LabState, read_state

TIMEOUT_S = 30.0
STOP_WAIT_S = 60.0  # a stopping supervisor's own teardown (its processes get a few seconds each)


class LabUnavailable(HarnessError):
    pass


def _admin(state: Path | str) -> str:
    data = read_state(Path(state))
    if data is None or data.phase != "ready" or not data.admin_url:
        raise LabUnavailable(f"no running lab at {state} (phase {None if data is None else data.phase})")
    return data.admin_url


def _call(state: Path | str, fault: str, **args: Any) -> dict[str, Any]:
    url = f"{_admin(state)}/faults/{fault}"
    try:
        r = requests.post(url, json={k: v for k, v in args.items() if v is not None}, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise LabUnavailable(f"the lab's supervisor did not answer {fault}: {exc}") from exc
    if r.status_code != 200:
        try:
            detail = r.json().get("error", r.text)
        except ValueError:
            detail = r.text
        raise HarnessError(f"lab refused {fault}: {detail}")
    return dict(r.json())


def kill_node(state: Path | str, node: str, mode: str = "sigkill") -> dict[str, Any]:
    return _call(state, "kill_node", node=node, mode=mode)


def partition_region(state: Path | str, region: str) -> dict[str, Any]:
    return _call(state, "partition_region", region=region)


def heal_partition(state: Path | str, region: str) -> dict[str, Any]:
    return _undo(state, "heal_partition", region=region)


def fail_model(state: Path | str, target: str, mode: str = "errors", **fields: Any) -> dict[str, Any]:
    return _call(state, "fail_model", target=target, mode=mode, **fields)


def restore_model(state: Path | str, target: str) -> dict[str, Any]:
    return _undo(state, "restore_model", target=target)


def deploy_model(state: Path | str, target: str, version: str, failure: str = "errors") -> dict[str, Any]:
    """Roll a (bad) model version out through the platform's canary rollout."""
    return _call(state, "deploy_model", target=target, version=version, failure=failure)


def stall_replacements(state: Path | str, region: str) -> dict[str, Any]:
    """Replacement nodes of the region hang while loading the model."""
    return _call(state, "stall_replacements", region=region)


def unstall_replacements(state: Path | str, region: str) -> dict[str, Any]:
    return _undo(state, "unstall_replacements", region=region)


def heal(state: Path | str) -> dict[str, Any]:
    """Undo every fault."""
    return _undo(state, "heal")


def _undo(state: Path | str, fault: str, **args: Any) -> dict[str, Any]:
    """An undo through the supervisor. With the supervisor dead (e.g. a game day killed with its lab),
    its faults died with the fleet; what outlives it - namespaces, the partition's routes, stray
    processes - is torn down from the state file. A supervisor that is alive but does not answer
    is an error: `reliability recover` tries again later."""
    try:
        return _call(state, fault, **args)
    except LabUnavailable:
        data = read_state(Path(state))
        if data is not None and data.phase == "stopping" and supervisor_alive(data):
            # Tearing itself down (e.g. orphaned by a killed harness): that heals every fault.
            data = _wait_stopped(Path(state))
        if data is None or data.phase == "down":
            return {"healed": [], "lab": "not running"}
        if supervisor_alive(data):
            raise
        return {"healed": down_from_state(Path(state)), "lab": "stopped (its supervisor was gone)"}


def _wait_stopped(state: Path) -> LabState | None:
    """The lab's state once its supervisor has finished stopping it (or died, or STOP_WAIT_S passed)."""
    deadline = time.monotonic() + STOP_WAIT_S
    data = read_state(state)
    while data is not None and data.phase == "stopping" and supervisor_alive(data):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
        data = read_state(state)
    return data


def lab_status(state: Path | str) -> dict[str, Any]:
    """The live status from the supervisor, or the last recorded state when it is not running."""
    data = read_state(Path(state))
    if data is None:
        raise LabUnavailable(f"no lab state at {state}")
    if data.phase == "ready" and data.admin_url:
        try:
            r = requests.get(f"{data.admin_url}/status", timeout=5)
            if r.status_code == 200:
                return dict(r.json())
        except requests.RequestException:
            pass
        out = data.model_dump(mode="json")
        out["phase"] = "unreachable"
        return out
    return data.model_dump(mode="json")
