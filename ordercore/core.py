"""The running order core: store handles, catalog cache, webhook dispatcher, clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import structlog
from aiohttp import web

from edgeorder.files import make_private_dir
from edgeorder.ordercore.catalog import Catalog, load_seed
from edgeorder.ordercore.checkout import CheckoutMemo
from edgeorder.ordercore.delivery import Dispatcher
from edgeorder.ordercore.errors import StoreError
from edgeorder.ordercore.metrics import Metrics
from edgeorder.ordercore.settings import Settings
from edgeorder.ordercore.store import catalog as catalog_store
from edgeorder.ordercore.store.db import Reader, Writer, connect
from edgeorder.ordercore.store.migrations import migrate
from edgeorder.ordercore.store.orders import purge_idempotency_keys

__all__ = ["CORE", "Core", "core_context"]

log = structlog.get_logger("ordercore")
PURGE_EVERY_S = 3600.0


class Core:
    """Everything a request handler needs; opened and closed by the app's cleanup context."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.catalog = Catalog()
        self.metrics = Metrics()
        self.checkouts = CheckoutMemo()
        """Validated checkout bodies and their hashes (a device repeats its body)."""
        self._writer: Writer | None = None
        self._reader: Reader | None = None
        self._dispatcher: Dispatcher | None = None

    @property
    def writer(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("order core is not open")
        return self._writer

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            raise RuntimeError("order core is not open")
        return self._reader

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("order core is not open")
        return self._dispatcher

    async def open(self) -> None:
        """Create the data dir, migrate, seed, load the catalog, start webhook delivery."""
        path = self.settings.db_path
        await asyncio.to_thread(_prepare, path)
        self._writer = Writer(path, batch_max=self.settings.write_batch_max)
        self._reader = Reader(path)
        try:
            if self.settings.catalog_seed is not None:
                seed = await asyncio.to_thread(load_seed, self.settings.catalog_seed)
                count = await self.writer.run(partial(catalog_store.seed_catalog, seed=seed))
                log.info("catalog_seeded", path=str(self.settings.catalog_seed), skus=count)
            await self.purge_idempotency_keys()
            self.catalog = Catalog(await self.reader.run(catalog_store.all_skus))
            self._dispatcher = Dispatcher(self.settings, self.reader, self.writer, self.clock)
            await self.dispatcher.start()  # resumes deliveries left over from the last run
        except BaseException:
            await self.close()
            raise
        log.info("ordercore_open", db=str(path), skus=len(self.catalog))

    async def purge_idempotency_keys(self) -> int:
        cutoff = self.clock() - self.settings.idempotency_ttl_days * 86400
        purged = await self.writer.run(partial(purge_idempotency_keys, older_than=cutoff))
        if purged:
            log.info("idempotency_keys_purged", count=purged)
        return purged

    async def close(self) -> None:
        """Stop deliveries, finish queued writes, close the database."""
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)
        self._dispatcher = self._writer = self._reader = None


def _prepare(path: Path) -> None:
    try:
        make_private_dir(path.parent)
        conn = connect(path)
    except OSError as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    try:
        migrate(conn)
    finally:
        conn.close()


CORE = web.AppKey("ordercore", Core)


async def core_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: open the core at start-up, purge old keys hourly, close it at shutdown."""
    core = app[CORE]
    await core.open()
    purge = asyncio.create_task(_purge_loop(core), name="idempotency-purge")
    yield
    purge.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await purge
    await core.close()


async def _purge_loop(core: Core) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_S)  # a periodic timer, not a readiness wait
        try:
            await core.purge_idempotency_keys()
        except Exception:
            log.exception("idempotency_purge_failed")
