"""haproxy.cfg for the lab's gateways: pydantic specs in, config text out (pure, golden-file tested).

Choices, each for what a game day measures (HAProxy 2.6, configuration.txt / management.txt):

- `balance leastconn` on the GPU nodes: LLM requests last from milliseconds to minutes and a
  node's cost grows with its running batch; leastconn sends the next request to the node with the
  fewest open requests, so a slow or hung node (gray failure) stops attracting traffic as its
  connections pile up, where roundrobin would keep feeding it a fixed share. Both are dynamic
  algorithms, which `add server` requires.
- `retry-on conn-failure empty-response response-timeout 502 503 504` + `retries` + `option
  redispatch 1`: HAProxy retries only while no byte of the response has been forwarded to the client
  (a status code is matched on the response headers before they are sent on; a request whose
  response has started is never replayed), and the request must fit in one buffer
  (tune.bufsize, 16 kB: a longer prompt is not retried). An OpenAI completion has no side effect but
  compute, so replaying one that produced no response is safe; each retry goes to another server.
  500 is not retried: it is the node failing this request (gray failure), which `observe layer7`
  turns into an ejection instead of a silent doubling of load. The store backend retries only
  `conn-failure` (the write was never sent): writes are not idempotent.
- `observe layer7` + `error-limit N` + `on-error mark-down` on every GPU node: N consecutive 5xx
  answers (or connection errors, timeouts) mark it DOWN although `/health` is 200; health checks
  bring it back after `rise` passing checks - so a gray node flaps (N errors, out for rise x inter,
  back). `HealthCheck.down_interval_s` (`downinter`) keeps it out longer, at the price of a slower
  return for a node that really recovered or a replacement (added DOWN, see runtime.add_server).
- Keep-alive on both sides (HAProxy's default) with an idle-connection pool per server
  (`pool-max-conn -1`; dynamic servers get none otherwise): a small JSON request then costs no TCP
  handshake to the node, where `option http-server-close` would pay one per request.
- `option http-no-delay` on the inference frontend: without it HAProxy lets the kernel hold
  partial packets back and SSE tokens arrive in ~200 ms batches (measured: 6 reads for 51 chunks).
- Long `timeout server` / `timeout client` (inactivity, 300 s): a non-streaming completion sends
  nothing until generation ends, and a stream may pause while the engine preempts.
- Dynamic servers (`add server` / `del server` on the runtime API) rather than `server-template`
  slots: a replacement node keeps its own name in logs, events and `haproxy_server_*{server=...}`
  series, and the number of nodes is not capped by a slot count. `add server` does not apply
  `default-server`, so every server line carries its options in full, rendered by
  `node_server_options()` for both the config file and the runtime API.
- Each gateway's health (`monitor-uri`, default `/health`) lives on its metrics port and is 200
  only while its main backend (`vllm` / `regions`) has a usable server; the global gateway checks
  the region gateways there (`check port`), so health checks never count as served requests.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RetryOn = Literal[
    "conn-failure",
    "empty-response",
    "junk-response",
    "response-timeout",
    "0rtt-rejected",
    "401",
    "403",
    "404",
    "408",
    "425",
    "500",
    "501",
    "502",
    "503",
    "504",
]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with its NUL


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    connect_s: float = Field(
        0.5, gt=0, le=60, description="TCP connect to a server (a blackholed one is retried after it)."
    )
    client_s: float = Field(300.0, gt=0, le=3600, description="Client inactivity (SSE streams).")
    server_s: float = Field(
        300.0, gt=0, le=3600, description="Server inactivity: a whole non-streamed generation fits."
    )
    http_request_s: float = Field(10.0, gt=0, le=600, description="Time to receive a request's headers.")
    http_keep_alive_s: float = Field(10.0, gt=0, le=600)
    queue_s: float = Field(5.0, gt=0, le=600, description="Wait for a server slot before a 503.")
    check_s: float = Field(1.0, gt=0, le=60, description="Health-check answer after connecting.")


class HealthCheck(_Strict):
    path: str = Field("/health", pattern=r"^/\S*$")
    interval_s: float = Field(0.25, gt=0, le=60, description="HAProxy `inter`.")
    fall: int = Field(2, ge=1, le=100, description="Consecutive failed checks before DOWN.")
    rise: int = Field(2, ge=1, le=100, description="Consecutive passed checks before UP.")
    down_interval_s: float | None = Field(
        None,
        gt=0,
        le=600,
        description="HAProxy `downinter`: check interval while DOWN (default: interval_s). A node "
        "ejected by `observe layer7` whose /health is green returns after rise x this.",
    )


class Server(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Node id or region name (logs, metrics).")
    host: str = Field(description="IPv4 address (dynamic servers never resolve names).")
    port: int = Field(ge=1, le=65535)
    check_port: int | None = Field(None, ge=1, le=65535, description="Health checks on another port.")
    weight: int = Field(1, ge=0, le=256)

    @field_validator("host")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError as exc:
            raise ValueError(f"expected an IPv4 address, got {value!r}") from exc
        return value


class _Gateway(_Strict):
    name: str = Field(description="Names the gateway in events (`gateway` field).")
    host: str = Field("127.0.0.1", description="Listening address of both frontends.")
    port: int = Field(ge=1, le=65535, description="`inference` frontend.")
    metrics_port: int = Field(ge=1, le=65535, description="/metrics (Prometheus) and the health URI.")
    stats_socket: Path = Field(description="Runtime API (unix socket, level admin).")
    health_uri: str = Field("/health", pattern=r"^/\S*$")
    nbthread: int = Field(1, ge=1, le=64, description="One thread serves ~20k small requests/s.")
    maxconn: int = Field(4096, ge=16, le=1_000_000)
    hard_stop_after_s: float = Field(10.0, gt=0, le=3600)
    retries: int = Field(2, ge=0, le=10)
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @field_validator("host")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        return Server._ipv4(value)

    @field_validator("stats_socket")
    @classmethod
    def _socket_path(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        if len(str(value).encode()) > UNIX_PATH_MAX:
            raise ValueError(f"unix socket paths are limited to {UNIX_PATH_MAX} bytes")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> _Gateway:
        if self.port == self.metrics_port:
            raise ValueError("port and metrics_port must differ")
        return self


class RegionGatewaySpec(_Gateway):
    """One region's gateway: frontend `inference` -> backend `vllm` (the region's GPU nodes)."""

    kind: Literal["region"] = "region"
    region: str
    nodes: list[Server] = Field(default_factory=list)
    check: HealthCheck = Field(default_factory=HealthCheck)
    error_limit: int = Field(3, ge=1, le=1000, description="Consecutive errors before ejection.")
    health_checks: bool = Field(
        True,
        description="False renders GPU nodes without health checks or passive ejection: a gateway that "
        "keeps routing to a dead backend (a misconfiguration a game day must catch).",
    )
    balance: Literal["leastconn", "roundrobin"] = "leastconn"
    retry_on: list[RetryOn] = Field(
        default_factory=lambda: ["conn-failure", "empty-response", "response-timeout", "502", "503", "504"],
        min_length=1,
    )

    @model_validator(mode="after")
    def _unique_nodes(self) -> RegionGatewaySpec:
        _unique("nodes", self.nodes)
        return self


class GlobalGatewaySpec(_Gateway):
    """The service endpoint: `inference` -> backend `regions`; `/store...` -> backend `store`."""

    kind: Literal["global"] = "global"
    routing: Literal["active-active", "active-passive"] = "active-active"
    primary_region: str | None = Field(
        None, description="Active-passive: the active region (default: first)."
    )
    regions: list[Server] = Field(
        min_length=1, description="Region gateways; check_port = their metrics port."
    )
    region_check: HealthCheck = Field(default_factory=HealthCheck)
    region_retry_on: list[RetryOn] = Field(
        default_factory=lambda: ["conn-failure", "empty-response", "502", "503", "504"], min_length=1
    )
    stores: list[Server] = Field(default_factory=list, description="Each region's store replica.")
    store_check: HealthCheck = Field(default_factory=lambda: HealthCheck(path="/primary"))
    store_primary: str | None = Field(
        None, description="The store replica that is primary at start (default: first); listed first."
    )
    store_prefix: str = Field("/store", pattern=r"^/[A-Za-z0-9._-]+$")

    @model_validator(mode="after")
    def _check_regions(self) -> GlobalGatewaySpec:
        _unique("regions", self.regions)
        _unique("stores", self.stores)
        names = [r.name for r in self.regions]
        if self.primary_region is not None and self.primary_region not in names:
            raise ValueError(f"primary_region: unknown region {self.primary_region!r}; regions are {names}")
        stores = [s.name for s in self.stores]
        if self.store_primary is not None and self.store_primary not in stores:
            raise ValueError(f"store_primary: unknown store {self.store_primary!r}; stores are {stores}")
        return self

    def active_region(self) -> str:
        return self.primary_region or self.regions[0].name


GatewaySpec = RegionGatewaySpec | GlobalGatewaySpec


def _unique(field_name: str, servers: list[Server]) -> None:
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ValueError(f"{field_name}: server names must be unique, got {names}")


def _ms(seconds: float) -> str:
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def check_options(check: HealthCheck, server: Server | None = None) -> list[str]:
    options = ["check", f"inter {_ms(check.interval_s)}", f"fall {check.fall}", f"rise {check.rise}"]
    if check.down_interval_s is not None:
        options.append(f"downinter {_ms(check.down_interval_s)}")
    if server is not None and server.check_port is not None:
        options.append(f"port {server.check_port}")
    return options


# Every server keeps idle keep-alive connections (dynamic servers have no pool unless told).
POOL_OPTIONS = ["pool-max-conn -1", "pool-purge-delay 5s"]


def node_server_options(spec: RegionGatewaySpec, server: Server | None = None) -> list[str]:
    """Options of a GPU node's `server` line - also what `add server` needs at run time."""
    weight = server.weight if server is not None else 1
    if not spec.health_checks:
        return [f"weight {weight}", *POOL_OPTIONS]
    return [
        *check_options(spec.check, server),
        "observe layer7",
        f"error-limit {spec.error_limit}",
        "on-error mark-down",
        f"weight {weight}",
        *POOL_OPTIONS,
    ]


@dataclass(frozen=True)
class _ServerLine:
    name: str
    host: str
    port: int
    options: list[str]


@dataclass(frozen=True)
class _Backend:
    name: str
    balance: str
    check_path: str
    retry_on: list[str]
    servers: list[_ServerLine]
    extra: list[str] = field(default_factory=list)

    @property
    def buffer_request(self) -> bool:
        """HAProxy replays a request (L7 retry) only if it holds all of it: wait for the body
        before connecting (measured: without it a POST whose body follows its headers in a
        second packet is never retried on a 503)."""
        return any(r != "conn-failure" for r in self.retry_on)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reliability.lab.haproxy", "."),
        undefined=jinja2.StrictUndefined,  # a missing key is an error, never an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["ms"] = _ms
    return env.get_template("haproxy.cfg.j2")


def region_backends(spec: RegionGatewaySpec) -> list[_Backend]:
    return [
        _Backend(
            name="vllm",
            balance=spec.balance,
            check_path=spec.check.path,
            retry_on=list(spec.retry_on),
            servers=[_ServerLine(n.name, n.host, n.port, node_server_options(spec, n)) for n in spec.nodes],
        )
    ]


def global_backends(spec: GlobalGatewaySpec) -> list[_Backend]:
    active = spec.active_region()

    def region_options(server: Server) -> list[str]:
        options = [*check_options(spec.region_check, server), f"weight {server.weight}", *POOL_OPTIONS]
        if spec.routing == "active-passive" and server.name != active:
            options.append("backup")  # HAProxy sends to the first backup only when no active is UP
        return options

    backends = [
        _Backend(
            name="regions",
            balance="leastconn",
            check_path=spec.region_check.path,
            retry_on=list(spec.region_retry_on),
            servers=[_ServerLine(r.name, r.host, r.port, region_options(r)) for r in spec.regions],
        )
    ]
    # The store's service address: only the replica answering 200 on /primary is UP. HAProxy 2.6
    # deems every server UP until its first `fall` checks fail, so the replica known to be primary
    # is listed first and `balance first` sends everything to the first UP server.
    stores = sorted(spec.stores, key=lambda s: s.name != (spec.store_primary or spec.stores[0].name))
    backends.append(
        _Backend(
            name="store",
            balance="first",
            check_path=spec.store_check.path,
            retry_on=["conn-failure"],
            servers=[
                _ServerLine(
                    s.name, s.host, s.port, [*check_options(spec.store_check, s), f"weight {s.weight}"]
                )
                for s in stores
            ],
            extra=[rf"http-request replace-path ^{spec.store_prefix}/?(.*)$ /\1"],
        )
    )
    return backends


def render(spec: GatewaySpec) -> str:
    """The whole haproxy.cfg of one gateway."""
    if isinstance(spec, RegionGatewaySpec):
        backends, main = region_backends(spec), "vllm"
    else:
        backends, main = global_backends(spec), "regions"
    return _template().render(gw=spec, kind=spec.kind, backends=backends, main_backend=main)
