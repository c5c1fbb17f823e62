"""The faults a Chaos Toolkit experiment would inject on a Kubernetes target, read from its method.

The plan (`reliability gameday plan`) must show exactly the calls a run makes, so it plans what the
run's chaos actions will call: each method action of `reliability.chaos.actions`, its arguments
substituted by chaoslib from the experiment's configuration and the scenario's overrides, mapped to
the fault function `reliability.k8s.faults` runs for it. An action with no Kubernetes mapping (a
store partition, stalled replacements) is refused before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reliability.errors import InputError
from reliability.k8s.plan import FaultCall

ACTIONS_MODULE = "reliability.chaos.actions"
# chaos action -> (fault function, arguments it passes on)
MAPPED = {
    "kill_node": ("kill_node", ("node", "mode")),
    "partition_region": ("partition_region", ("region",)),
    "fail_model": ("fail_model", ("target", "mode", "fraction", "name", "value")),
    "deploy_model": ("fail_model", ("target",)),
}
UNDO = {"heal", "heal_partition", "restore_model"}


def fault_calls(experiment: Path, overrides: dict[str, Any] | None = None) -> list[FaultCall]:
    """Every fault the experiment's method injects, in order (InputError for one that has no
    Kubernetes mapping)."""
    from chaoslib import substitute
    from chaoslib.configuration import load_configuration

    from reliability.chaos.runner import load_experiment

    data = load_experiment(Path(experiment))
    configuration = load_configuration(dict(data.get("configuration") or {}), dict(overrides or {}))
    calls: list[FaultCall] = []
    for i, activity in enumerate(data.get("method") or []):
        provider = activity.get("provider") or {}
        if activity.get("type") != "action" or provider.get("module") != ACTIONS_MODULE:
            continue
        func = str(provider.get("func", ""))
        where = f"{experiment}: method[{i}]"
        if func in UNDO:
            continue
        if func not in MAPPED:
            raise InputError(
                where,
                f"action {func!r} has no Kubernetes mapping (a Kubernetes target runs "
                f"{', '.join(sorted(MAPPED))})",
            )
        target_func, keep = MAPPED[func]
        args = substitute(dict(provider.get("arguments") or {}), configuration, {})
        kept = {k: v for k, v in args.items() if k in keep and v is not None}
        if func == "kill_node":
            kept.setdefault("mode", "xid79")  # the chaos action's default
        if func == "deploy_model":
            kept["mode"] = "bad_version"
        calls.append(FaultCall(func=target_func, args=kept))  # type: ignore[arg-type]
    if not calls:
        raise InputError(str(experiment), f"no fault action of {ACTIONS_MODULE} in the method")
    return calls
