"""Pressing a simulated device of a running demo: the HTTP route the demo adds to ingest's app,
and ``edgeorder demo press DEVICE [single|double|long]``, its command-line client.

The route sits behind ingest's auth middleware like every ``/api/`` route; the CLI sends the
API token the demo keeps in ``D/secrets.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from edgeorder.demo.fleet import DemoFleet, UnknownSimulatedDeviceError, parse_click
from edgeorder.demo.secrets import SecretsFileError, load_secrets

__all__ = ["FLEET_KEY", "PRESS_PATH", "install_press_route", "press_main"]

log = structlog.get_logger(__name__)

PRESS_PATH = "/api/demo/devices/{device_id}/press"
FLEET_KEY = web.AppKey("demo_fleet", DemoFleet)


def install_press_route(app: web.Application, fleet: DemoFleet) -> None:
    """Add ``POST /api/demo/devices/{device_id}/press`` (body ``{"click": "single"}``)."""
    app[FLEET_KEY] = fleet
    app.router.add_post(PRESS_PATH, _press)


async def _press(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    try:
        body = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        return _error(400, 'body must be JSON like {"click": "single"}')
    click = body.get("click", "single") if isinstance(body, dict) else None
    if not isinstance(click, str):
        return _error(400, 'body must be JSON like {"click": "single"}')
    fleet = request.app[FLEET_KEY]
    try:
        event = await fleet.press_and_wait(device_id, click)
    except UnknownSimulatedDeviceError as exc:
        return _error(404, str(exc), devices=sorted(fleet.simulated_devices()))
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response(
        {
            "device_id": device_id,
            "click": parse_click(click).value,
            "event_id": None if event is None else event.event_id,
        },
        status=202,
    )


def _error(status: int, message: str, **extra: Any) -> web.Response:
    log.info("demo.press_refused", status=status, reason=message)
    return web.json_response({"error": message, **extra}, status=status)


# -- the CLI ---------------------------------------------------------------------------------


class PressError(RuntimeError):
    """The press could not be delivered; the message says why and what to do."""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Press the button of a simulated device of the running `edgeorder demo` "
        "(the same as the Press control on the dashboard's device page).",
    )
    parser.add_argument("device", metavar="DEVICE", help="device id, e.g. demo-01")
    parser.add_argument(
        "click",
        nargs="?",
        default="single",
        choices=["single", "double", "long"],
        help="the click (default single: reorder; double: the other SKU; "
        "long: cancel the last order)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("edgeorder-data"),
        help="the demo's data dir, for its API token (default ./edgeorder-data)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the demo's host (default 127.0.0.1)")
    parser.add_argument(
        "--http-port", type=int, default=8080, help="the demo's dashboard/API port (default 8080)"
    )
    return parser


def press(data_dir: Path, host: str, port: int, device_id: str, click: str) -> dict[str, Any]:
    """POST the press to the running demo; returns its JSON answer or raises PressError."""
    secrets_path = data_dir / "secrets.json"
    if not secrets_path.exists():
        raise PressError(
            f"no {secrets_path}: start the demo with `edgeorder demo --data-dir "
            f"{data_dir}` first (or pass the --data-dir it uses)"
        )
    try:
        token = load_secrets(secrets_path, env={}).api_token
    except SecretsFileError as exc:
        raise PressError(str(exc)) from exc
    base = f"http://{host}:{port}"
    request = urllib.request.Request(
        base + PRESS_PATH.format(device_id=urllib.parse.quote(device_id, safe="")),
        data=json.dumps({"click": click}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            answer: dict[str, Any] = json.load(resp)
            return answer
    except urllib.error.HTTPError as exc:
        raise PressError(_http_reason(exc, base, data_dir)) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PressError(
            f"no edgeorder demo answers on {base} ({exc}): is it running? "
            "Start it with `edgeorder demo`, or pass its --http-port"
        ) from exc


def _http_reason(exc: urllib.error.HTTPError, base: str, data_dir: Path) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    message = body.get("error") if isinstance(body, dict) else None
    if exc.code == 401:
        return (
            f"{base} refused the API token from {data_dir / 'secrets.json'}: is the demo "
            "on that port running with this --data-dir?"
        )
    if exc.code == 404 and message is None:
        return f"{base} is not an edgeorder demo (no press route there)"
    return f"{base} answered {exc.code}: {message or exc.reason}"


def press_main(argv: list[str], prog: str) -> int:
    """``edgeorder demo press``: 0 when the press was taken, 1 with a reason otherwise."""
    args = build_parser(prog).parse_args(argv)
    try:
        answer = press(args.data_dir, args.host, args.http_port, args.device, args.click)
    except PressError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    event = answer.get("event_id")
    print(
        f"pressed {answer.get('device_id')} ({answer.get('click')})"
        + (f": event {event}" if event else "")
    )
    return 0
