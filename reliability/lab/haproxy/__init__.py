"""The lab's region and global gateways on HAProxy 2.6 (docs/twin.md section 2).

Parts, one job each:
- `config`: pydantic specs (`RegionGatewaySpec`, `GlobalGatewaySpec`, `Server`, `HealthCheck`,
  `Timeouts`) and `render(spec) -> str`, the whole haproxy.cfg (golden-file tested); its docstring
  gives the reasons for each choice (leastconn, retry-on, observe layer7, keep-alive pools,
  http-no-delay for SSE, dynamic servers).
- `process`: `HAProxyProcess(spec, workdir, on_event=..., argv_prefix=[...])` - validated config,
  foreground process (`haproxy -db`), bounded start, log read live into events, bounded stop.
- `runtime`: `RuntimeAPI(socket_path)` - `show_stat`, `show_servers_state`, `add_server`,
  `del_server`, `set_server_state`..., HAProxy's refusals as `RuntimeAPIError`.
- `logparse`: `LogParser(gateway).feed(line) -> list[GatewayEvent]` (pure).

Topology: region gateway = frontend `inference` -> backend `vllm` (servers named by node id);
global gateway = frontend `inference` -> backend `regions` (servers named by region; `backup` on
all but the active region in active-passive), and `/store...` -> backend `store` (servers named by
the store's region; only the replica answering 200 on `/primary` is UP; prefix stripped). Each
gateway's metrics port serves `/metrics` and its health URI `/health` (200 while its main backend
has a usable server); the global gateway checks each region gateway there.

Metrics (HAProxy 2.6's built-in exporter, names checked by scraping it in the tests; scrape jobs
`haproxy-region` with target label `region`, and `haproxy-global`):
- Availability at the service endpoint (job `haproxy-global`):
  `haproxy_frontend_http_responses_total{proxy="inference",code="5xx"}` over
  `haproxy_frontend_http_requests_total{proxy="inference"}` (`code` is a class: 1xx...5xx, other).
  The frontend also carries the `/store` requests; for the model API alone use the backend:
  `haproxy_backend_http_responses_total{proxy="regions",code="5xx"}` over
  `haproxy_backend_http_requests_total{proxy="regions"}` (503s of an empty backend count there).
  Gateway health checks never count: they hit the metrics frontend.
- Per region (job `haproxy-region`): the same series with `proxy="vllm"`.
- Server state: `haproxy_server_status{proxy="vllm",server="<node>",state="UP"|"DOWN"|"MAINT"|
  "DRAIN"|"NOLB"}` (1 on the current state), `haproxy_server_check_status{...,state="L7OK"|"L7STS"|
  "L4CON"|"L4TOUT"|"HANA"...}`, `haproxy_server_check_up_down_total`,
  `haproxy_backend_active_servers{proxy="vllm"}` (usable GPU nodes of the region),
  `haproxy_backend_active_servers{proxy="regions"}` / `haproxy_backend_backup_servers` (failover:
  active 0 while backup > 0), `haproxy_backend_status{proxy=...,state="UP"|"DOWN"}`.
- Retries and ejections: `haproxy_backend_retry_warnings_total`,
  `haproxy_backend_redispatch_warnings_total`, `haproxy_backend_connection_errors_total`,
  `haproxy_server_http_responses_total{proxy="vllm",server=...,code="5xx"}`.
- HAProxy has no latency histograms in 2.6 (only `*_response_time_average_seconds` over the last
  1024 requests): latency SLOs stay on the vLLM histograms.

Events (`GatewayEvent`, written by the caller with
`append_event(path, e.event, **e.fields())`; fields `gateway`, `backend`, `server`, `reason`,
`info`, `check_duration_ms`, `active_servers`, `backup_servers` when known):
- `gateway_server_down`: reason "Layer4 connection problem" (info "Connection refused"),
  "Layer4 timeout", "Layer7 wrong status, code: 503", "Health analyze" (passive ejection by
  `observe layer7`, info "Detected N consecutive errors, last one was: ..."), "changed from CLI",
  "maintenance". A region failover is `gateway_server_down` on backend `regions` with
  `active_servers == 0` and `backup_servers > 0`; failback is the matching `gateway_server_up`.
- `gateway_server_up`: reason "Layer7 check passed, code: 200", or "leaving forced maintenance".
  A server added with `RuntimeAPI.add_server` logs "leaving forced maintenance" (up), then
  "changed from CLI" (down: it must pass `rise` checks first), then "Layer7 check passed" (up):
  the last one is when it really takes traffic.
- `gateway_backend_empty`: the backend has no usable server ("backend vllm has no server
  available!").
"""

from reliability.lab.haproxy.config import (
    GatewaySpec,
    GlobalGatewaySpec,
    HealthCheck,
    RegionGatewaySpec,
    Server,
    Timeouts,
    node_server_options,
    render,
)
from reliability.lab.haproxy.logparse import GatewayEvent, LogParser
from reliability.lab.haproxy.process import HAProxyProcess, check_config, haproxy_binary
from reliability.lab.haproxy.runtime import RuntimeAPI, RuntimeAPIError, ServerState, StatRow

__all__ = [
    "GatewayEvent",
    "GatewaySpec",
    "GlobalGatewaySpec",
    "HAProxyProcess",
    "HealthCheck",
    "LogParser",
    "RegionGatewaySpec",
    "RuntimeAPI",
    "RuntimeAPIError",
    "Server",
    "ServerState",
    "StatRow",
    "Timeouts",
    "check_config",
    "haproxy_binary",
    "node_server_options",
    "render",
]
