"""``edgeorder device``: tags and a site at ``add``, ``tag`` and ``disable`` on several devices
(all or nothing, each failing device named), ``list --tag/--site``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.proc import run_cli


def test_tags_sites_and_several_devices_at_once_from_the_cli(tmp_path: Path) -> None:
    data = str(tmp_path)
    for device_id, extra in (("c-01", ["--tag", "bar", "--site", "Porto"]), ("c-02", [])):
        added = run_cli(
            *("device", "add", device_id, "--sku", "COFFEE-1KG", "--data-dir", data),
            *("--allow-unknown-sku", *extra),  # no order platform runs here
        )
        assert added.returncode == 0, added.stderr

    tagged = run_cli("device", "tag", "c-01", "c-02", "--add", "night", "--data-dir", data)
    assert tagged.returncode == 0, tagged.stderr
    assert "device c-02 tagged night" in tagged.stdout
    refused = run_cli("device", "disable", "c-01", "ghost", "--data-dir", data)
    assert refused.returncode == 1
    assert "ghost: unknown device 'ghost'" in refused.stderr
    assert "nothing changed (1 device(s) failed)" in refused.stderr
    listed = run_cli(
        "device", "list", "--json", "--tag", "bar", "--site", "Porto", "--data-dir", data
    )
    (row,) = json.loads(listed.stdout)
    assert (row["device_id"], row["tags"], row["site"], row["enabled"]) == (
        "c-01",
        ["bar", "night"],
        "Porto",
        True,  # the refused disable changed nothing
    )
    assert "--tag TAG" in run_cli("device", "add", "--help").stdout
