"""`reliability load worker --master HOST[:PORT]`: a Locust worker for a game day's master, run anywhere
that reaches the service endpoint (another machine, a Kubernetes Job: examples/kubernetes).

The worker needs no configuration of its own: the master sends its options (model, prompt and output
lengths, golden file path, latency targets, request rate) with the spawn message, and only the
master writes `load_stats.jsonl`. The worker must run the same users as the master: the built-in
user (default `openai-chat`) or the scenario's own locustfile (`--scenario` reads both from the
scenario file; a locustfile and a golden file must exist at the same path on this machine).

The process becomes Locust (exec): signals reach Locust directly, and its exit code is the command's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from reliability.errors import InputError

app = typer.Typer(no_args_is_help=True)
DEFAULT_MASTER_PORT = 5557  # Locust's own default


def parse_master(value: str) -> tuple[str, int]:
    """`HOST`, `HOST:PORT` or `[IPv6]:PORT` -> (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise InputError("--master", f"no host in {value!r} (HOST[:PORT])")
    try:
        port = int(port_text) if port_text else DEFAULT_MASTER_PORT
    except ValueError:
        raise InputError("--master", f"not a port: {port_text!r}") from None
    if not 0 < port < 65536:
        raise InputError("--master", f"not a port: {port}")
    return host, port


@app.command("worker")
def worker_command_cli(
    master: Annotated[
        str, typer.Option("--master", help=f"The master as HOST[:PORT] (default port {DEFAULT_MASTER_PORT}).")
    ],
    user: Annotated[
        str | None,
        typer.Option("--user", help="Built-in user: openai-chat (default), openai-completions, oip-predict."),
    ] = None,
    locustfile: Annotated[
        Path | None, typer.Option("--locustfile", help="Your own locustfile (as the master's scenario runs).")
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", help="Take the user (or locustfile) from this scenario's `load`."),
    ] = None,
) -> None:
    """Run a Locust worker that joins a game day's master and runs its users."""
    from reliability.load.run import USER_CLASSES, worker_command

    host, port = parse_master(master)
    kind, file = _users(user, locustfile, scenario)
    if kind != "locustfile" and kind not in USER_CLASSES:
        raise InputError("--user", f"unknown user {kind!r} (use one of {', '.join(USER_CLASSES)})")
    argv = worker_command(host, port, kind, file)  # type: ignore[arg-type]
    typer.echo(f"locust worker -> master {host}:{port} ({kind}{f': {file}' if file else ''})", err=True)
    os.execv(argv[0], argv)


def _users(user: str | None, locustfile: Path | None, scenario: Path | None) -> tuple[str, Path | None]:
    if scenario is not None:
        if user or locustfile:
            raise InputError("--scenario", "give either --scenario or --user/--locustfile")
        from reliability.scenario import load_scenario, resolve

        sc = load_scenario(scenario)
        file = resolve(scenario, sc.load.locustfile) if sc.load.locustfile else None
        return sc.load.user, file
    if locustfile is not None:
        if user not in (None, "locustfile"):
            raise InputError("--locustfile", "a locustfile replaces the built-in user: drop --user")
        if not locustfile.is_file():
            raise InputError("--locustfile", f"file not found: {locustfile}")
        return "locustfile", locustfile.resolve()
    return user or "openai-chat", None
