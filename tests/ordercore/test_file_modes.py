"""The order core's database holds the webhook secrets: it and its WAL/SHM files are 0600
whatever the umask (issue 11 §4)."""

from __future__ import annotations

from typing import Any

from edgeorder.ordercore import Settings
from tests.ordercore.conftest import AUTH, StartCore
from tests.support.umask import mode, umask


async def test_database_wal_and_shm_are_0600_under_umask_000(
    start_core: StartCore, core_settings: Settings
) -> None:
    with umask(0o000):
        client = await start_core()
        body: dict[str, Any] = {"Url": "http://127.0.0.1:9/hook", "Events": ["*"], "Secret": "x"}
        resp = await client.post("/api/webhooks", json=body, headers=AUTH)
        assert resp.status == 201
    path = core_settings.db_path
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert mode(path.parent) == 0o700
