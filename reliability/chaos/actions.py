"""Chaos Toolkit python actions over the lab (`provider: {type: python, module:
reliability.chaos.actions, func: ...}`).

Each injection is written to the fault ledger (fsynced) before the lab is touched; each undo
marks the ledger entries it cleared. The lab itself is driven through `reliability.lab.faults`
by state-file path, so these work from `chaos run`, from our runner and from tests alike.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from reliability.chaos import controls
from reliability.chaos.jsonl import stamp
from reliability.chaos.ledger import FaultLedger, Undo, ledger_for_state
from reliability.chaos.state import resolve_state_file

Configuration = dict[str, Any]


DEFAULT_FAULTS_MODULE = "reliability.lab.faults"


def faults_module_name(configuration: Configuration | None) -> str:
    """The module implementing the fault functions over a state file: the lab's by default; the
    `faults_module` configuration key points elsewhere (another target with the same functions)."""
    return str((configuration or {}).get("faults_module") or DEFAULT_FAULTS_MODULE)


def _faults(configuration: Configuration | None) -> ModuleType:
    # Imported lazily so that experiments validate (and `chaos discover` works) without the lab.
    return importlib.import_module(faults_module_name(configuration))


def _ledger(state: Path, configuration: Configuration | None) -> FaultLedger:
    explicit = (configuration or {}).get("fault_ledger")
    return FaultLedger(Path(explicit) if explicit else ledger_for_state(state))


def _inject(
    fault: str, args: dict[str, Any], undo: Undo, state_file: str | None, configuration: Configuration | None
) -> Any:
    state = resolve_state_file(state_file, configuration)
    ledger = _ledger(state, configuration)
    # Recorded first: a fault that fails half-way stays active so that rollback/recover undo it.
    entry = ledger.record_inject(fault, args, state, undo, faults_module_name(configuration))
    began = stamp()
    result = getattr(_faults(configuration), fault)(state, **args)
    # `ts`/`mono` of the record = when the lab call began (the fault lands during the call).
    controls.record("fault_injected", fault=fault, args=args, ledger_id=entry, **began, returned=stamp())
    return {"ledger_id": entry, "fault": fault, "args": args, "result": result}


def _undo(
    func: str, args: dict[str, Any], state_file: str | None, configuration: Configuration | None
) -> Any:
    state = resolve_state_file(state_file, configuration)
    began = stamp()
    result = getattr(_faults(configuration), func)(state, **args)
    controls.record("fault_cleared", undo=func, args=args, **began, returned=stamp())
    ledger = _ledger(state, configuration)
    for entry in ledger.active():
        if func == "heal" or (entry.undo.func == func and entry.undo.args == args):
            ledger.record_cleared(entry.id, by=f"{func}({args})")
    return result


def kill_node(
    node: str, mode: str = "xid79", state_file: str | None = None, configuration: Configuration = None
) -> Any:
    """Lose a GPU node: `sigkill` (the host dies) or `xid<code>` (its GPU reports that Xid: 79 fell
    off the bus, 48 double-bit ECC, ...); the platform must detect and replace it."""
    return _inject("kill_node", {"node": node, "mode": mode}, Undo("heal"), state_file, configuration)


def partition_region(region: str, state_file: str | None = None, configuration: Configuration = None) -> Any:
    """Cut a region off the network (traffic must fail over)."""
    return _inject(
        "partition_region",
        {"region": region},
        Undo("heal_partition", {"region": region}),
        state_file,
        configuration,
    )


def partition_store_primary(state_file: str | None = None, configuration: Configuration = None) -> Any:
    """Cut off whichever region currently holds the replicated store's primary."""
    state = resolve_state_file(state_file, configuration)
    region = store_primary_region(_faults(configuration).lab_status(state))
    return partition_region(region, str(state), configuration)


def store_primary_region(status: dict[str, Any]) -> str:
    """The region whose store reports role 'primary' in `lab_status`."""
    store = status.get("store") or {}
    if isinstance(store, dict):
        if isinstance(store.get("primary"), str):
            return str(store["primary"])
        for region, info in store.items():
            if isinstance(info, dict) and info.get("role") == "primary":
                return str(region)
    for region, info in (status.get("regions") or {}).items():
        if isinstance(info, dict) and (info.get("store_role") == "primary" or info.get("primary")):
            return str(region)
    raise RuntimeError("lab_status shows no store primary")


def fail_model(
    target: str,
    mode: str = "errors",
    rate: float = 1.0,
    latency_ms: float | None = None,
    factor: float | None = None,
    fraction: float | None = None,
    hang: bool | None = None,
    version: str | None = None,
    state_file: str | None = None,
    configuration: Configuration = None,
) -> Any:
    """Make the model on a node, a region or `all` misbehave: errors, latency, wrong answers, a bad
    version, a gray failure (health green, generation failing or hanging), slow decode, a KV-cache cut."""
    args = {"target": target, "mode": mode, "rate": rate}
    extra = {
        "latency_ms": latency_ms,
        "factor": factor,
        "fraction": fraction,
        "hang": hang,
        "version": version,
    }
    args.update({k: v for k, v in extra.items() if v is not None})
    return _inject("fail_model", args, Undo("restore_model", {"target": target}), state_file, configuration)


def deploy_model(
    target: str,
    version: str,
    failure: str = "errors",
    state_file: str | None = None,
    configuration: Configuration = None,
) -> Any:
    """Roll a broken model version out through the platform's canary rollout (which should roll it
    back on its own); the rollback restores the model whatever the platform did."""
    return _inject(
        "deploy_model",
        {"target": target, "version": version, "failure": failure},
        Undo("restore_model", {"target": target}),
        state_file,
        configuration,
    )


def stall_replacements(
    region: str, state_file: str | None = None, configuration: Configuration = None
) -> Any:
    """Replacement nodes of the region hang while loading the model (a stuck provisioning)."""
    return _inject(
        "stall_replacements",
        {"region": region},
        Undo("unstall_replacements", {"region": region}),
        state_file,
        configuration,
    )


def unstall_replacements(
    region: str, state_file: str | None = None, configuration: Configuration = None
) -> Any:
    return _undo("unstall_replacements", {"region": region}, state_file, configuration)


def heal_partition(region: str, state_file: str | None = None, configuration: Configuration = None) -> Any:
    return _undo("heal_partition", {"region": region}, state_file, configuration)


def restore_model(target: str, state_file: str | None = None, configuration: Configuration = None) -> Any:
    return _undo("restore_model", {"target": target}, state_file, configuration)


def heal(state_file: str | None = None, configuration: Configuration = None) -> Any:
    """Undo every fault in the lab (the rollback every shipped experiment ends with)."""
    return _undo("heal", {}, state_file, configuration)
