"""A real HAProxy ingress on loopback, shaped like the lab's global gateway, for the alert tests.

Frontend `inference` -> backend `regions` with one server per region (the last one `backup`, as in
active-passive routing), health-checked on /health, and HAProxy's own Prometheus exporter on a
metrics frontend. The regions are small HTTP servers in threads that can be stopped and started
again on the same port, which HAProxy sees as a region going down and coming back.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import requests
from prometheus_client.parser import text_string_to_metric_families

from reliability.tools import free_port, parent_death_signal

CONFIG = """\
global
    stats socket {socket} mode 600 level admin
defaults
    mode http
    timeout connect 500ms
    timeout client 10s
    timeout server 10s
    timeout check 500ms
frontend inference
    bind 127.0.0.1:{port}
    default_backend regions
backend regions
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    default-server check inter 200ms fall 2 rise 2
{servers}
frontend metrics
    bind 127.0.0.1:{metrics_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""

Sample = tuple[str, dict[str, str], float]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        # /fail answers 500: a request the region could not serve.
        status = 500 if self.path.startswith("/fail") else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # HAProxy's health checks hang up as soon as they have the status line; not an error.
        pass


@dataclass
class Region:
    """A region gateway stand-in: an HTTP server on a fixed port that can go away and come back."""

    name: str
    port: int = field(default_factory=free_port)
    backup: bool = False
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        threading.Thread(target=server.serve_forever, name=f"region-{self.name}", daemon=True).start()
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class Ingress:
    """HAProxy (the installed binary) in the foreground, owned by this process."""

    def __init__(self, workdir: Path, regions: list[Region]) -> None:
        self.workdir = workdir
        self.regions = {r.name: r for r in regions}
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def config(self) -> str:
        servers = "\n".join(
            f"    server {r.name} 127.0.0.1:{r.port}{' backup' if r.backup else ''}"
            for r in self.regions.values()
        )
        return CONFIG.format(
            socket=self.workdir / "admin.sock",
            port=self.port,
            metrics_port=self.metrics_port,
            servers=servers,
        )

    def start(self, haproxy: str, timeout: float = 15.0) -> Ingress:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(self.config(), encoding="utf-8")
        log = open(self.workdir / "haproxy.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [haproxy, "-db", "-f", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=parent_death_signal(signal.SIGTERM),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.workdir / "haproxy.log").read_text(errors="replace")[-2000:])
            try:
                self.scrape()
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"haproxy's metrics did not answer within {timeout}s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def command(self, line: str) -> str:
        """One command on the runtime API (the stats socket, level admin), as `socat` would send it."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.workdir / "admin.sock"))
            sock.sendall(line.encode() + b"\n")
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
        return out.decode()

    def scrape(self) -> list[Sample]:
        """Every sample of HAProxy's /metrics, parsed by the Prometheus client's own parser."""
        text = requests.get(self.metrics_url, timeout=2).text
        return [
            (s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples
        ]

    def server_state(self, server: str) -> str | None:
        """The `state` whose haproxy_server_status sample is 1 for a server of backend `regions`."""
        for name, labels, value in self.scrape():
            if (
                name == "haproxy_server_status"
                and labels.get("proxy") == "regions"
                and labels.get("server") == server
                and value == 1
            ):
                return labels["state"]
        return None

    def wait_for_state(self, server: str, state: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server_state(server) == state:
                return
            time.sleep(0.05)
        raise AssertionError(
            f"server {server} not {state} within {timeout}s (is {self.server_state(server)})"
        )

    def __enter__(self) -> Ingress:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        for region in self.regions.values():
            region.stop()
