"""How the hostile-input corpus in cases/ was made (kept so its binary cases can be reviewed and
remade): `python tests/hostile/make_cases.py` rewrites every case file. The expectations live in
test_hostile_inputs.py; a new case needs an entry there."""

import random
from pathlib import Path

C = Path(__file__).resolve().parent / "cases"
SLO = """version: reliability/v1
service: svc
period: 28d
slos:
  - name: avail
    objective: 99.9
    description: {desc}
    sli:
      events:
        error_query: sum(rate(http_total{{code=~"5.."}}[{{{{.window}}}}]))
        total_query: sum(rate(http_total[{{{{.window}}}}]))
    alerting:
      name: SvcErrors
"""


def slo(desc="Availability", **repl):
    t = SLO.format(desc=desc)
    for a, b in repl.items():
        t = t.replace(a.replace("_", " ") if False else a, b)
    return t


def w(path, data):
    p = C / path
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


BOMB = "".join(
    ["    lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]
    + [f"    lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10)]
)
rng = random.Random(11)
garbage = bytes(rng.randrange(128, 256) for _ in range(200))

# ---- SLO files (slo compile) ----
w("slo/latin1-encoded.yaml", slo(desc="Disponibilité du café").encode("latin-1"))
w("slo/utf16-with-bom.yaml", slo().encode("utf-16"))
w("slo/utf16-without-bom.yaml", slo().encode("utf-16-le"))
w("slo/random-bytes.yaml", garbage)
w("slo/nul-byte.yaml", slo(desc="Avail\x00ability"))
w("slo/control-character.yaml", slo(desc="Avail\x07ability"))
w("slo/impossible-date-objective.yaml", slo().replace("objective: 99.9", "objective: 2026-13-45"))
w("slo/integer-over-4300-digits.yaml", slo().replace("objective: 99.9", "objective: " + "9" * 5000))
w("slo/nesting-100k-deep.yaml", slo().replace("description: Availability", "description: " + "[" * 100000))
w(
    "slo/alias-chain-deeper-than-100.yaml",
    slo() + "x:\n" + "".join(f"  a{i}: &a{i} [" + (f"*a{i - 1}" if i else "1") + "]\n" for i in range(150)),
)
w("slo/period-99999999999999999999d.yaml", slo().replace("period: 28d", "period: 99999999999999999999d"))
w(
    "slo/factor-1e308.yaml",
    slo().replace(
        "    alerting:",
        "    alert_windows:\n      - {severity: page, long: 1h, short: 5m, factor: 1e308}\n    alerting:",
    ),
)
w("slo/duplicate-key-objective.yaml", slo().replace("objective: 99.9", "objective: 99.9\n    objective: 0.5"))
w(
    "slo/billion-laughs-in-labels.yaml",
    slo().replace("    alerting:", "    labels:\n" + BOMB.replace("    ", "      ") + "    alerting:"),
)
w("slo/recursive-alias.yaml", slo().replace("    alerting:", "    labels: &l {a: *l}\n    alerting:"))
w(
    "slo/threshold-seconds-inf.yaml",
    slo().replace(
        '      events:\n        error_query: sum(rate(http_total{code=~"5.."}[{{.window}}]))\n'
        "        total_query: sum(rate(http_total[{{.window}}]))\n",
        "      latency: {metric: http_duration_seconds, threshold_seconds: .inf}\n",
    ),
)
w("slo/objective-nan.yaml", slo().replace("objective: 99.9", "objective: .nan"))
w("slo/misspelled-service-key.yaml", slo().replace("service: svc", "servce: svc"))
w(
    "slo/python-object-tag.yaml",
    slo().replace("description: Availability", "description: !!python/object/apply:os.system [true]"),
)
w(
    "slo/merge-of-a-scalar.yaml",
    slo().replace(
        "    alerting:\n      name: SvcErrors", "    alerting:\n      <<: 5\n      name: SvcErrors"
    ),
)
w("slo/empty-file.yaml", "")
w("slo/top-level-list.yaml", "- version: reliability/v1\n")
w("slo/unterminated-flow.yaml", "version: reliability/v1\nservice: [svc\n")
w(
    "slo/sloth-contrib-plugin.yaml",
    """version: prometheus/v1
service: svc
slos:
  - name: avail
    objective: 99.9
    plugins:
      chain:
        - id: sloth.dev/contrib/info_labels/v1
          config: {labels: {team: x}}
    sli:
      events:
        error_query: sum(rate(http_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_total[{{.window}}]))
    alerting:
      name: SvcErrors
""",
)
w(
    "slo/openslo-threshold-metric.yaml",
    """apiVersion: openslo/v1
kind: SLO
metadata: {name: latency}
spec:
  service: api
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99, op: lte, value: 0.5}]
  indicator:
    spec:
      thresholdMetric:
        metricSource:
          type: Prometheus
          spec: {query: 'histogram_quantile(0.99, sum(rate(x_bucket[{{.window}}])) by (le))'}
""",
)
w("slo/client-sli-ttft-on-events.yaml", slo().replace("    alerting:", "    client_sli: ttft\n    alerting:"))
w("slo/duration-with-milliseconds.yaml", slo().replace("period: 28d", "period: 1500ms"))
w("slo/binary-tag.yaml", slo().replace("description: Availability", "description: !!binary aGVsbG8="))

# ---- scenarios (gameday run) ----
SC = """name: hostile
slos: [does-not-exist.yaml]
experiment:
  file: does-not-exist.yaml
  configuration:
    node: us-east-1
phases:
  baseline: 15s
  fault_hold: 20s
  recovery_max: 60s
"""
w("scenario/latin1-encoded.yaml", ("description: région coupée\n" + SC).encode("latin-1"))
w(
    "scenario/billion-laughs-in-experiment-configuration.yaml",
    SC.replace("    node: us-east-1\n", "    node: us-east-1\n" + BOMB),
)
w("scenario/impossible-date-as-duration.yaml", SC.replace("baseline: 15s", "baseline: 2026-13-45"))
w(
    "scenario/duplicate-key-fault-hold.yaml",
    SC.replace("fault_hold: 20s", "fault_hold: 20s\n  fault_hold: 2h"),
)
w("scenario/baseline-inf.yaml", SC.replace("baseline: 15s", "baseline: .inf"))
w("scenario/baseline-400-digit-seconds.yaml", SC.replace("baseline: 15s", "baseline: '" + "9" * 400 + "s'"))
w("scenario/misspelled-phase-key.yaml", SC.replace("fault_hold: 20s", "fault_hld: 20s"))
w("scenario/nesting-100k-deep.yaml", SC.replace("    node: us-east-1\n", "    node: " + "[" * 100000 + "\n"))
w("scenario/slo-objective-nan.yaml", SC + "slo_objective: .nan\n")
w("scenario/random-bytes.yaml", bytes(reversed(garbage)))

# ---- lab configs (lab up --config) ----
w(
    "lab/1000-regions-of-16-nodes.yaml",
    "regions:\n" + "".join(f"  - {{name: r{i}, nodes: 16}}\n" for i in range(1000)),
)
w("lab/160-gpu-nodes.yaml", "regions:\n" + "".join(f"  - {{name: r{i}, nodes: 16}}\n" for i in range(10)))
w("lab/utf16-with-bom.yaml", "regions:\n  - {name: us-east, nodes: 2}\n".encode("utf-16"))
w("lab/duplicate-key-nodes.yaml", "regions:\n  - name: us-east\n    nodes: 2\n    nodes: 16\n")
w("lab/heartbeat-nan.yaml", "controller:\n  heartbeat_interval_s: .nan\n")
w("lab/misspelled-regions-key.yaml", "regoins:\n  - {name: us-east, nodes: 2}\n")
w("lab/integer-over-4300-digits.yaml", "regions:\n  - {name: us-east, nodes: " + "1" * 4400 + "}\n")

# ---- runbooks (runbook check) ----
RB = """---
id: {id}
title: Disk full
alerts: [DiskFull]
severity: warning
owners: [team]
last_reviewed: 2026-01-01
---

## Meaning

Disk full.

## Impact

Writes fail.

## Diagnosis

Look.

## Mitigation

1. Free space.
"""


def rb(name, text=None, enc="utf-8"):
    text = RB.format(id=name) if text is None else text
    w(f"runbook/{name}.md", text.encode(enc))


rb("latin1-encoded", RB.format(id="latin1-encoded").replace("Disk full.", "Disque plein, café."), "latin-1")
rb(
    "duplicate-key-severity",
    RB.format(id="duplicate-key-severity").replace("severity: warning", "severity: warning\nseverity: info"),
)
rb("impossible-date", RB.format(id="impossible-date").replace("2026-01-01", "2026-13-45"))
rb(
    "billion-laughs-in-tags",
    RB.format(id="billion-laughs-in-tags").replace(
        "owners: [team]", "owners: [team]\nlaughs:\n" + BOMB.replace("    ", "  ")
    ),
)
rb("utf16-with-bom", None, "utf-16")
rb("misspelled-owners-key", RB.format(id="misspelled-owners-key").replace("owners: [team]", "owner: [team]"))

# ---- Chaos Toolkit experiments (gameday run of a scenario naming them) ----
EXP = """version: 1.0.0
title: Hostile
description: x
configuration:
  node: us-east-1
method:
  - type: action
    name: noop
    provider: {type: python, module: os, func: getcwd}
"""
w(
    "experiment/latin1-encoded.yaml",
    EXP.replace("description: x", "description: noeud coupé").encode("latin-1"),
)
w("experiment/random-bytes.json", garbage[::2] + garbage[1::2])
w("experiment/nesting-100k-deep.json", "[" * 100000)
w("experiment/duplicate-key-title.yaml", EXP.replace("title: Hostile", "title: Hostile\ntitle: Other"))
w(
    "experiment/billion-laughs-in-configuration.yaml",
    EXP.replace("  node: us-east-1\n", "  node: us-east-1\n" + BOMB.replace("    ", "  ")),
)
w("experiment/top-level-list.json", "[1, 2, 3]")
w("experiment/utf16-with-bom.json", '{"title": "x"}'.encode("utf-16"))
w("experiment/truncated.json", '{"version": "1.0.0", "title": "Hostile", "method": [')

# ---- run directories (report RUN_DIR): WHAT@PATH, '+' for '/' ----
w("rundir/latin1-encoded@scenario.yaml", "description: région\nname: hostile\n".encode("latin-1"))
w("rundir/duplicate-key-name@scenario.yaml", "name: hostile\nname: other\n")
w("rundir/nesting-100k-deep-line@events.jsonl", '{"ts": 1, "event": "lab_up"}\n' + "[" * 100000 + "\n")
w("rundir/random-bytes@series+sli.csv", garbage)
w(
    "rundir/seq-not-a-number@canary_writes.jsonl",
    '{"kind": "write", "seq": "abc", "ts": 1, "acked": true}\n{"kind": "survivors", "seqs": [1]}\n',
)
w("rundir/ts-of-mixed-types@load_stats.jsonl", '{"ts": "noon", "requests": 1}\n{"ts": 2, "requests": 1}\n')
