"""One region's replica of the lab's replicated store (`python -m reliability.lab.store SPEC`).

An append log of checksummed entries. The primary acknowledges a write once it is in its own log;
secondaries pull from the primary, but only entries acknowledged at least `replication_lag_s` ago
(asynchronous replication with a known lag). If the primary's region is lost, the supervisor promotes
the most up-to-date secondary, and acknowledged writes it had not pulled are gone - as in real life.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import Counter, Gauge

from reliability.lab.serving import json_response, serve, spec_from_argv, with_client_session

ROLE = Gauge("store_role", "1 for the role this replica has.", ["role"])
LAG = Gauge("store_replication_lag_seconds", "How far this replica is behind the primary's acknowledgements.")
LAST_INDEX = Gauge("store_last_applied_seq", "Index of the last log entry applied here.")
WRITES = Counter("store_writes", "Writes acknowledged by this replica as primary.")


def entry_checksum(index: int, key: str, seq: int, value: Any, ts: float) -> str:
    payload = json.dumps([index, key, seq, value, ts], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    index: int
    key: str
    seq: int
    value: Any
    ts: float  # when the primary acknowledged it (wall clock)
    sha256: str

    def intact(self) -> bool:
        return self.sha256 == entry_checksum(self.index, self.key, self.seq, self.value, self.ts)


class Replica:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.region = str(spec["region"])
        self.role = str(spec.get("role", "secondary"))
        self.primary_url = str(spec.get("primary_url") or "").rstrip("/")
        self.lag_s = float(spec.get("replication_lag_s", 1.0))
        self.poll_s = float(spec.get("poll_interval_s", 0.1))
        self.log: list[Entry] = []
        self.caught_up_to = time.time() if self.role == "primary" else 0.0
        self.session: aiohttp.ClientSession | None = None
        self._publish()

    def _publish(self) -> None:
        for role in ("primary", "secondary"):
            ROLE.labels(role=role).set(1 if role == self.role else 0)
        LAST_INDEX.set(self.log[-1].index if self.log else 0)
        LAG.set(0.0 if self.role == "primary" else max(0.0, time.time() - self.caught_up_to))

    def append(self, key: str, seq: int, value: Any) -> Entry:
        index = (self.log[-1].index if self.log else 0) + 1
        ts = time.time()
        entry = Entry(index, key, seq, value, ts, entry_checksum(index, key, seq, value, ts))
        self.log.append(entry)
        WRITES.inc()
        self._publish()
        return entry

    # -- replication ----------------------------------------------------------------------------------
    async def replicate_loop(self) -> None:
        while True:
            if self.role == "secondary" and self.primary_url:
                await self._pull()
            self._publish()
            await asyncio.sleep(self.poll_s)

    async def _pull(self) -> None:
        assert self.session is not None
        after = self.log[-1].index if self.log else 0
        cutoff = time.time() - self.lag_s
        try:
            async with self.session.get(
                f"{self.primary_url}/log",
                params={"after": str(after), "until": repr(cutoff)},
                timeout=aiohttp.ClientTimeout(total=max(self.poll_s * 5, 0.5)),
            ) as r:
                if r.status != 200:
                    return
                data = await r.json()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return
        for raw in data.get("entries", []):
            entry = Entry(**raw)
            if not entry.intact():
                return  # never apply a corrupt entry; retry on the next pull
            if entry.index == (self.log[-1].index if self.log else 0) + 1:
                self.log.append(entry)
        self.caught_up_to = cutoff

    # -- HTTP -----------------------------------------------------------------------------------------
    async def write(self, request: web.Request) -> web.Response:
        if self.role != "primary":
            return json_response({"error": f"{self.region} is not the primary"}, 409)
        try:
            body = await request.json()
            entry = self.append(str(body["key"]), int(body["seq"]), body.get("value", body.get("ts")))
        except (ValueError, KeyError, TypeError):
            return json_response({"error": 'body must be {"key": str, "seq": int, ...}'}, 400)
        return json_response({"acked": True, "index": entry.index, "region": self.region})

    async def get_log(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        until = float(request.query.get("until", "inf"))
        # Indexes are contiguous from 1, so entry i sits at position i-1.
        entries = [e for e in self.log[max(after, 0) : after + 5000] if e.ts <= until]
        return json_response({"entries": [asdict(e) for e in entries]})

    async def seqs(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "canary")
        return json_response({"region": self.region, "seqs": [e.seq for e in self.log if e.key == key]})

    async def verify(self, _: web.Request) -> web.Response:
        corrupt = [e.index for e in self.log if not e.intact()]
        return json_response(
            {"region": self.region, "entries": len(self.log), "ok": not corrupt, "corrupt": corrupt}
        )

    async def promote(self, _: web.Request) -> web.Response:
        self.role, self.primary_url = "primary", ""
        self._publish()
        return json_response(self._status())

    async def follow(self, request: web.Request) -> web.Response:
        body = await request.json()
        primary_url = str(body["primary_url"]).rstrip("/")
        if self.role == "primary" or primary_url != self.primary_url:
            # A demoted primary's history has diverged (its unreplicated tail was lost to the others);
            # resync from the new primary from scratch rather than guess the common point.
            self.log, self.caught_up_to = [], 0.0
        self.role, self.primary_url = "secondary", primary_url
        self._publish()
        return json_response(self._status())

    def _status(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "role": self.role,
            "last_index": self.log[-1].index if self.log else 0,
            "entries": len(self.log),
            "last_ts": self.log[-1].ts if self.log else None,
        }

    async def primary(self, _: web.Request) -> web.Response:
        return await _primary(self)

    async def healthz(self, _: web.Request) -> web.Response:
        return json_response(self._status())


async def _primary(replica: Replica) -> web.Response:
    """200 only on the primary: the ingress health-checks this so writes reach the primary."""
    ok = replica.role == "primary"
    return json_response({"region": replica.region, "role": replica.role}, 200 if ok else 503)


def build_app(replica: Replica) -> web.Application:
    app = web.Application()
    app.router.add_post("/write", replica.write)
    app.router.add_get("/log", replica.get_log)
    app.router.add_get("/seqs", replica.seqs)
    app.router.add_get("/verify", replica.verify)
    app.router.add_post("/promote", replica.promote)
    app.router.add_post("/follow", replica.follow)
    app.router.add_get("/healthz", replica.healthz)
    app.router.add_get("/readyz", replica.healthz)
    app.router.add_get("/primary", replica.primary)
    return with_client_session(app, replica, replica.replicate_loop)


def main() -> None:
    spec = spec_from_argv()
    serve(build_app(Replica(spec)), str(spec["host"]), int(spec["port"]))


if __name__ == "__main__":
    main()
