"""`reliability lab up|status|down`: a thin layer over reliability.lab."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="Lab work directory (default: $RELIABILITY_LAB_DIR or ./.lab).")
]


def _dir(explicit: Path | None) -> Path:
    from reliability.lab.lab import lab_dir

    return explicit or lab_dir()


@app.command()
def up(
    config: Annotated[
        Path | None, typer.Option("--config", help="Lab YAML (default topology if omitted).")
    ] = None,
    isolation: Annotated[str, typer.Option(help="auto | netns (root) | proxy")] = "auto",
    detach: Annotated[bool, typer.Option("--detach", help="Leave the lab running and return.")] = False,
    slos: Annotated[
        list[Path] | None,
        typer.Option("--slo", help="SLO files to load into Prometheus (default: slos/*.yaml)."),
    ] = None,
    workdir: DirOpt = None,
) -> None:
    """Start the lab; prints the service endpoint and the Prometheus URL."""
    from reliability.lab import Lab, load_lab_config
    from reliability.lab.fabric import choose_isolation
    from reliability.slo import load_slo_files

    choose_isolation(isolation)  # a bad value is an input error before anything starts
    cfg = load_lab_config(config)
    slo_files = list(slos) if slos is not None else sorted(Path("slos").glob("*.yaml"))
    load_slo_files(slo_files)  # invalid SLOs: a one-line error now, not a failed start
    lab = Lab(cfg, _dir(workdir), isolation=isolation, slo_files=slo_files, keep_running=detach)
    started = time.monotonic()
    lab.start()
    typer.echo(
        f"lab up in {time.monotonic() - started:.1f}s ({lab.isolation} isolation), work dir {lab.workdir}"
    )
    typer.echo(
        f"  endpoint:   {lab.endpoint}   (OpenAI API: POST /v1/chat/completions, model "
        f'"{cfg.model.served_name}"; KServe v2: POST /v2/models/{cfg.predictor.name}/infer)'
    )
    typer.echo(f"  prometheus: {lab.prometheus_url}")
    typer.echo(f"  state:      {lab.state_file}")
    if detach:
        typer.echo("running in the background; stop it with: reliability lab down")
        return
    typer.echo("Ctrl-C stops the lab")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while lab.proc is not None and lab.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
        typer.echo("lab stopped")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    workdir: DirOpt = None,
) -> None:
    """Every component of the lab: pid, address, region, readiness."""
    from reliability.lab.faults import lab_status

    state = lab_status(_dir(workdir) / "state.json")
    if as_json:
        typer.echo(json.dumps(state, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    from reliability.lab.state import LabState

    lab = LabState.model_validate(state)
    table = Table(title=f"lab {lab.lab_id}: {lab.phase} ({lab.isolation} isolation)")
    for col in ("component", "region", "pid", "address", "status"):
        table.add_column(col)
    nodes = {f"node/{n.name}": n for n in lab.nodes}
    for c in lab.components:
        node = nodes.get(c.name)
        if node is not None:
            status_txt = (
                node.status + (", ready" if node.ready else "") + (", cordoned" if node.unschedulable else "")
            )
        else:
            status_txt = "running" if c.pid else "stopped"
        table.add_row(c.name, c.region or "-", str(c.pid or "-"), f"{c.host}:{c.port}", status_txt)
    console = Console()
    console.print(table)
    console.print(
        f"endpoint {lab.endpoint}  prometheus {lab.prometheus_url}  "
        f"store primary {lab.store.primary if lab.store else '-'}  "
        f"partitioned {lab.partitioned or '-'}  faults {list(lab.faults) or '-'}"
    )


@app.command()
def down(workdir: DirOpt = None) -> None:
    """Stop the lab and remove its namespaces - also after its supervising process was killed."""
    from reliability.lab import down_from_state

    state_file = _dir(workdir) / "state.json"
    if not state_file.exists():
        typer.echo(f"no lab state at {state_file}: nothing to stop")
        return
    forced = down_from_state(state_file)
    typer.echo("lab down" + (f" (removed leftovers: {', '.join(forced)})" if forced else ""))
