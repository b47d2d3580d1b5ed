"""An operator's browser on the LAN, for the multi-host test: log in to ingest's dashboard,
add a device on the Provisioning page, print what the page offers for download (the
firmware config and the broker's CA) as JSON. Run inside a test host:
``python -m tests.deploy.dashboard_client URL PASSWORD DEVICE_ID SKU``."""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import urllib.parse
import urllib.request


def main() -> None:
    base, password, device_id, sku = sys.argv[1:5]
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    login = urllib.parse.urlencode({"username": "admin", "password": password, "next": "/"})
    with opener.open(f"{base}/login", data=login.encode(), timeout=30) as resp:
        page = resp.read().decode()
    csrf = re.search(r'data-csrf="([^"]+)"', page)
    if csrf is None:
        raise SystemExit(f"login failed:\n{page[:2000]}")
    form = {
        "csrf_token": csrf.group(1),
        "device_id": device_id,
        "env": "prod",
        "single_type": "reorder",
        "single_sku": sku,
        "single_quantity": "1",
        "double_type": "none",
        "long_type": "cancel_last",
    }
    request = urllib.request.Request(
        f"{base}/provision",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Accept": "application/json"},
    )
    with opener.open(request, timeout=30) as resp:
        body = json.load(resp)
    with opener.open(f"{base}/provision", timeout=30) as resp:
        body["provision_page"] = resp.read().decode()
    json.dump(body, sys.stdout)


if __name__ == "__main__":
    main()
