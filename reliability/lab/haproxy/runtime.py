"""A typed client of HAProxy's runtime API (the `stats socket ... level admin` unix socket).

One command per connection (HAProxy's non-interactive mode: send a line, read to EOF). HAProxy 2.6
answers a command with free text and no status code; each method knows what success looks like
("New server registered.", "Server deleted.", or nothing) and raises `RuntimeAPIError` carrying
HAProxy's own message otherwise. Blocking and fast (a local socket, ~1 ms): from asyncio code call
it through `asyncio.to_thread`.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reliability.errors import HarnessError

ServerAdminState = Literal["ready", "drain", "maint"]
ServerHealth = Literal["up", "stopping", "down"]
# srv_op_state in `show servers state` (HAProxy's enum srv_state).
OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
# srv_admin_state bits (enum srv_admin).
ADMIN_FORCED_MAINT = 0x01
ADMIN_INHERITED_MAINT = 0x02
ADMIN_CONFIG_MAINT = 0x04
ADMIN_FORCED_DRAIN = 0x08
ADMIN_INHERITED_DRAIN = 0x10
ADMIN_RESOLVE_MAINT = 0x20
ADMIN_HOSTNAME_MAINT = 0x40


class RuntimeAPIError(HarnessError):
    """HAProxy refused a runtime command, or its socket could not be reached."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"haproxy runtime API: {command!r}: {message}")
        self.command = command
        self.message = message


@dataclass(frozen=True)
class StatRow:
    """One line of `show stat` (a frontend, backend or server); fields as HAProxy names them."""

    pxname: str
    svname: str  # FRONTEND, BACKEND or the server's name
    type: Literal["frontend", "backend", "server", "listener"]
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "no check", OPEN...
    scur: int  # current sessions
    qcur: int  # queued requests
    stot: int
    weight: int
    act: int  # backend: active servers UP; server: 1 if active (not backup)
    bck: int
    chkfail: int
    chkdown: int
    lastchg: int | None  # seconds since the last UP<->DOWN change
    check_status: str
    check_code: int | None
    check_duration_ms: int | None
    hrsp_2xx: int
    hrsp_5xx: int
    req_tot: int
    wretr: int  # retries
    wredis: int  # redispatches
    raw: dict[str, str]

    @property
    def is_server(self) -> bool:
        return self.type == "server"


@dataclass(frozen=True)
class ServerState:
    """One line of `show servers state` (the state HAProxy would carry over a reload)."""

    backend: str
    server: str
    addr: str
    port: int | None
    op_state: str  # stopped | starting | running | stopping
    admin_state: int  # ADMIN_* bits
    weight: int
    check_health: int
    seconds_since_change: int

    @property
    def maintenance(self) -> bool:
        return bool(self.admin_state & (ADMIN_FORCED_MAINT | ADMIN_INHERITED_MAINT | ADMIN_CONFIG_MAINT))

    @property
    def draining(self) -> bool:
        return bool(self.admin_state & (ADMIN_FORCED_DRAIN | ADMIN_INHERITED_DRAIN))

    @property
    def usable(self) -> bool:
        """Receives new traffic: running, not in maintenance, not draining."""
        return self.op_state == "running" and not self.maintenance and not self.draining


_TYPES: dict[str, Literal["frontend", "backend", "server", "listener"]] = {
    "0": "frontend",
    "1": "backend",
    "2": "server",
    "3": "listener",
}


def _int(value: str | None) -> int:
    return int(value) if value not in (None, "") else 0


def _opt_int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def parse_stat_csv(text: str) -> list[StatRow]:
    """`show stat` CSV -> rows (pure)."""
    lines = text.strip("\n").splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"not a `show stat` answer: {text[:80]!r}")
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    rows = []
    for r in reader:
        r = {k: v for k, v in r.items() if k}  # the header ends with a comma: one empty column
        rows.append(
            StatRow(
                pxname=r["pxname"],
                svname=r["svname"],
                type=_TYPES.get(r.get("type", ""), "server"),
                status=r.get("status", ""),
                scur=_int(r.get("scur")),
                qcur=_int(r.get("qcur")),
                stot=_int(r.get("stot")),
                weight=_int(r.get("weight")),
                act=_int(r.get("act")),
                bck=_int(r.get("bck")),
                chkfail=_int(r.get("chkfail")),
                chkdown=_int(r.get("chkdown")),
                lastchg=_opt_int(r.get("lastchg")),
                check_status=(r.get("check_status") or "").lstrip("* "),
                check_code=_opt_int(r.get("check_code")),
                check_duration_ms=_opt_int(r.get("check_duration")),
                hrsp_2xx=_int(r.get("hrsp_2xx")),
                hrsp_5xx=_int(r.get("hrsp_5xx")),
                req_tot=_int(r.get("req_tot")),
                wretr=_int(r.get("wretr")),
                wredis=_int(r.get("wredis")),
                raw=dict(r),
            )
        )
    return rows


def parse_servers_state(text: str) -> list[ServerState]:
    """`show servers state` (format version 1) -> rows (pure)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "1":
        raise ValueError(f"unsupported `show servers state` format: {text[:80]!r}")
    header = lines[1].lstrip("# ").split()
    out = []
    for line in lines[2:]:
        r = dict(zip(header, line.split(), strict=False))
        out.append(
            ServerState(
                backend=r["be_name"],
                server=r["srv_name"],
                addr=r["srv_addr"],
                port=_opt_int(r.get("srv_port")),
                op_state=OP_STATES.get(int(r["srv_op_state"]), r["srv_op_state"]),
                admin_state=int(r["srv_admin_state"]),
                weight=int(r["srv_uweight"]),
                check_health=int(r["srv_check_health"]),
                seconds_since_change=int(r["srv_time_since_last_change"]),
            )
        )
    return out


class RuntimeAPI:
    def __init__(self, socket_path: Path | str, timeout_s: float = 5.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout_s = timeout_s

    def command(self, command: str) -> str:
        """Send one command line, return HAProxy's whole answer."""
        if "\n" in command or ";" in command:
            raise ValueError(f"one command at a time: {command!r}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout_s)
                s.connect(self.socket_path)
                s.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise RuntimeAPIError(command, f"{self.socket_path}: {exc.strerror or exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def _expect(self, command: str, success: str = "") -> None:
        answer = self.command(command).strip()
        if answer != success:
            raise RuntimeAPIError(command, answer or "empty answer")

    # -- reading ------------------------------------------------------------------------------------
    def show_info(self) -> dict[str, str]:
        answer = self.command("show info")
        info = dict(line.split(": ", 1) for line in answer.splitlines() if ": " in line)
        if "Pid" not in info:
            raise RuntimeAPIError("show info", answer.strip() or "empty answer")
        return info

    def show_stat(self, proxy: str | None = None) -> list[StatRow]:
        command = f"show stat {proxy} -1 -1" if proxy else "show stat"
        answer = self.command(command)
        try:
            return parse_stat_csv(answer)
        except ValueError as exc:
            raise RuntimeAPIError(command, answer.strip() or str(exc)) from exc

    def server_stat(self, backend: str, server: str) -> StatRow:
        for row in self.show_stat(backend):
            if row.is_server and row.svname == server:
                return row
        raise RuntimeAPIError(f"show stat {backend}", f"no server {server!r} in backend {backend!r}")

    def show_servers_state(self, backend: str | None = None) -> list[ServerState]:
        command = f"show servers state {backend}" if backend else "show servers state"
        answer = self.command(command)
        try:
            return parse_servers_state(answer)
        except ValueError as exc:
            raise RuntimeAPIError(command, answer.strip() or str(exc)) from exc

    # -- changing -----------------------------------------------------------------------------------
    def add_server(
        self,
        backend: str,
        name: str,
        addr: str,
        port: int,
        *,
        options: Sequence[str] = (),
        check: bool = True,
        start_down: bool = True,
    ) -> None:
        """Add a server at run time (no reload) and enable it.

        A dynamic server takes nothing from `default-server`: pass its full options (for a GPU node,
        `config.node_server_options(spec)`). With `check`, health checks are enabled; with
        `start_down` (the default) it receives traffic only after `rise` passing checks - HAProxy 2.6
        would otherwise mark it UP the moment it leaves maintenance, before its first check, and a
        replacement still loading its model would see requests."""
        opts = list(options)
        if check and "check" not in opts:
            opts.insert(0, "check")
        self._expect(
            f"add server {backend}/{name} {addr}:{port} {' '.join(opts)}".rstrip(), "New server registered."
        )
        if check:
            self._expect(f"enable health {backend}/{name}")
        self._expect(f"enable server {backend}/{name}")
        if check and start_down:
            self._expect(f"set server {backend}/{name} health down")

    def del_server(self, backend: str, name: str, *, drain_timeout_s: float = 5.0) -> None:
        """Remove a server at run time. It is put in maintenance (no new requests), its open
        requests get `drain_timeout_s` to finish, then the rest are shut down; HAProxy deletes a
        server only once no connection (active or idle) is attached to it."""
        self.set_server_state(backend, name, "maint")
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline:
            row = self.server_stat(backend, name)
            if row.scur == 0 and row.qcur == 0:
                break
            time.sleep(0.05)
        else:
            self._expect(f"shutdown sessions server {backend}/{name}")
        command = f"del server {backend}/{name}"
        answer = ""
        for _ in range(100):  # shut-down streams and idle connections are released within ms
            answer = self.command(command).strip()
            if answer == "Server deleted.":
                return
            if "connection" not in answer.lower():
                break
            time.sleep(0.02)
        raise RuntimeAPIError(command, answer or "empty answer")

    def set_server_state(self, backend: str, server: str, state: ServerAdminState) -> None:
        if state not in ("ready", "drain", "maint"):
            raise ValueError(f"state must be ready, drain or maint, got {state!r}")
        self._expect(f"set server {backend}/{server} state {state}")

    def set_server_health(self, backend: str, server: str, health: ServerHealth) -> None:
        if health not in ("up", "stopping", "down"):
            raise ValueError(f"health must be up, stopping or down, got {health!r}")
        self._expect(f"set server {backend}/{server} health {health}")

    def set_server_weight(self, backend: str, server: str, weight: int) -> None:
        self._expect(f"set server {backend}/{server} weight {int(weight)}")
