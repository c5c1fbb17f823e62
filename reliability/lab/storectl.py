"""Failover of the lab's replicated store: promote the most up-to-date secondary when the primary
has been unreachable for `failover_after_s`, point the others at it, and demote a healed old
primary. The ingress finds the new primary on its own (its `/store` backend checks `/primary`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from reliability.lab.config import StoreConfig
from reliability.lab.events import append_event
from reliability.lab.topology import StorePlan


class StoreController:
    def __init__(
        self,
        config: StoreConfig,
        stores: dict[str, StorePlan],
        primary: str,
        address: Callable[[str, str, int], str],
        partitioned: Callable[[str], bool],
        events_path: Any,
        on_change: Callable[[], None],
    ) -> None:
        self.config = config
        self.stores = stores
        self.primary = primary
        self.address = address  # fabric.address(src, dst_region, port)
        self.partitioned = partitioned
        self.events_path = events_path
        self.on_change = on_change
        self.session: aiohttp.ClientSession | None = None

    async def status(self, region: str, timeout: float = 0.5) -> dict[str, Any] | None:
        assert self.session is not None
        try:
            async with self.session.get(
                self.stores[region].url + "/healthz", timeout=aiohttp.ClientTimeout(total=timeout)
            ) as r:
                return dict(await r.json()) if r.status == 200 else None
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None

    async def _post(self, region: str, path: str, body: dict[str, Any] | None = None) -> None:
        assert self.session is not None
        async with self.session.post(
            self.stores[region].url + path, json=body or {}, timeout=aiohttp.ClientTimeout(total=2)
        ) as r:
            if r.status != 200:
                raise aiohttp.ClientError(f"store {region} {path}: {r.status}")

    async def loop(self) -> None:
        down_since: float | None = None
        while True:
            await asyncio.sleep(0.25)
            if await self.status(self.primary, 0.25) is not None:
                down_since = None
            else:
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since >= self.config.failover_after_s and len(self.stores) > 1:
                    await self.promote_best_secondary()
                    down_since = None
            await self.demote_stale_primaries()

    async def promote_best_secondary(self) -> None:
        old = self.primary
        best: tuple[dict[str, Any], str] | None = None
        for region in self.stores:
            if region == old:
                continue
            status = await self.status(region)
            if status is not None and (best is None or status["last_index"] > best[0]["last_index"]):
                best = (status, region)
        if best is None:
            return  # no secondary reachable either: nothing to promote to
        new = best[1]
        await self._post(new, "/promote")
        self.primary = new
        append_event(
            self.events_path,
            "store_promoted",
            old_primary=old,
            new_primary=new,
            last_index=best[0]["last_index"],
            last_ts=best[0].get("last_ts"),
        )
        self.on_change()
        await self._point_secondaries()

    def _primary_url_from(self, region: str) -> str:
        return f"http://{self.address(region, self.primary, self.stores[self.primary].port)}"

    async def _point_secondaries(self) -> None:
        for region in self.stores:
            if region == self.primary or self.partitioned(region):
                continue
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                await self._post(region, "/follow", {"primary_url": self._primary_url_from(region)})

    async def demote_stale_primaries(self) -> None:
        """A healed old primary still believes it is primary: make it follow the new one."""
        for region in self.stores:
            if region == self.primary or self.partitioned(region):
                continue
            status = await self.status(region)
            if status is not None and status.get("role") == "primary":
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    await self._post(region, "/follow", {"primary_url": self._primary_url_from(region)})
                    append_event(self.events_path, "store_demoted", region=region, primary=self.primary)
