"""A Kubernetes cluster as the target of a game day (issue 13; contract in docs/twin.md section 5).

- `target`: the `target: {kind: kubernetes, ...}` model, its JSON Schema, the state file.
- `faults`: the fault functions over the state file (the surface of `reliability.lab.faults`).
- `plan`: what a run would touch, sent with server-side `dryRun=All`, plus access reviews.
- `watch`: nodes, pods and our NetworkPolicies watched into `events.jsonl` (ground truth).
"""
