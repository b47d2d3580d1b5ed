"""``edgeorder demo``: everything on one machine, in one process and one asyncio loop.

The embedded broker (amqtt, per-device credentials from ingest's registry, the registry's ACL),
the order core with its seed catalog, ingest with the dashboard (its connector points at the
order core over HTTP, its webhook registered there), and N simulated devices running the real
agent code on gpiozero's MockFactory. ``edgeorder demo press DEVICE [CLICK]`` presses one.

Data lives in ``--data-dir`` (default ./edgeorder-data) and is re-used on restart: passwords are
generated once, devices registered once. SIGINT/SIGTERM shut down in reverse order of start:
agents go offline, ingest flushes, the order core stops, the broker stops last.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from edgeorder.agent.errors import ConfigError
from edgeorder.demo.broker import EmbeddedBroker, PortInUseError, ensure_port_free
from edgeorder.demo.fleet import DemoFleet
from edgeorder.demo.press import install_press_route, press_main
from edgeorder.demo.provision import INGEST_ACCOUNT, DemoPaths, Provisioned, provision
from edgeorder.demo.secrets import (
    DemoSecrets,
    SecretsFileError,
    load_secrets,
    ordercore_token_specs,
    save_secrets,
)
from edgeorder.httpserver import GuardedSite, ServerLimits, make_runner

__all__ = ["DemoOptions", "main", "run_demo"]

log = structlog.get_logger(__name__)

READY_LINE = "edgeorder demo is ready"


@dataclass(frozen=True)
class DemoOptions:
    """The command line of ``edgeorder demo``."""

    data_dir: Path
    host: str
    mqtt_port: int
    http_port: int
    ordercore_port: int
    devices: int

    @property
    def url_host(self) -> str:
        """Where clients on this machine reach a listener bound to ``host``."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.url_host}:{self.mqtt_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.url_host}:{self.http_port}"

    @property
    def ordercore_url(self) -> str:
        return f"http://{self.url_host}:{self.ordercore_port}"


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run all of edgeorder on this machine in one process: an embedded MQTT "
        "broker (amqtt; per-device passwords, no anonymous access), the built-in order core "
        "with a seeded catalog, ingest with the operator dashboard, and N simulated devices "
        "(demo-01, demo-02, ...) running the real agent code on gpiozero's MockFactory. "
        "Ctrl-C or SIGTERM stops everything cleanly.",
        epilog=f"Press a simulated device from another terminal: '{prog} press demo-01 "
        "[single|double|long]' (see '{prog} press --help'), or from its page on the dashboard. "
        "A single click reorders COFFEE-1KG, a double click TEA-250G, a long press cancels the "
        "last order; demo devices run with env dev, so their orders are Test orders. Environment: "
        "EDGEORDER_ADMIN_PASSWORD sets the dashboard password of 'admin', "
        "EDGEORDER_ORDERCORE_TOKEN your admin token of the order core (ingest gets an app "
        "token of its own); otherwise both are generated once and kept in "
        "DATA_DIR/secrets.json.".replace("{prog}", prog),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("edgeorder-data"),
        help="where all state lives (databases, secrets.json, firmware-config/, "
        "device outboxes); re-used on restart (default ./edgeorder-data)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address every listener binds to (default 127.0.0.1)"
    )
    parser.add_argument(
        "--mqtt-port",
        type=_port,
        default=1883,
        help="embedded MQTT broker port (default 1883; a system Mosquitto often "
        "holds it, then pick another)",
    )
    parser.add_argument(
        "--http-port",
        type=_port,
        default=8080,
        help="dashboard and ingest REST API port (default 8080)",
    )
    parser.add_argument(
        "--ordercore-port", type=_port, default=8081, help="order core API port (default 8081)"
    )
    parser.add_argument(
        "--devices",
        type=_device_count,
        default=3,
        help="how many simulated devices, demo-01.. (default 3)",
    )
    return parser


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return value


def _device_count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 999:
        raise argparse.ArgumentTypeError("--devices must be between 0 and 999")
    return value


def check_ports(opts: DemoOptions) -> None:
    """Raise PortInUseError (naming the option to change) before anything starts."""
    wanted = [
        ("MQTT broker", opts.mqtt_port, "--mqtt-port"),
        ("dashboard/ingest", opts.http_port, "--http-port"),
        ("order core", opts.ordercore_port, "--ordercore-port"),
    ]
    seen: dict[int, str] = {}
    for what, port, flag in wanted:
        if port in seen:
            raise PortInUseError(
                errno.EADDRINUSE,
                f"{what}: port {port} is also given to {seen[port]}; "
                f"choose another with {flag} PORT",
            )
        seen[port] = flag
        ensure_port_free(opts.host, port, what=what, flag=flag)


def main(argv: list[str], prog: str) -> int:
    """``edgeorder demo [options]`` or ``edgeorder demo press DEVICE [CLICK]``."""
    if argv and argv[0] == "press":
        return press_main(argv[1:], f"{prog} press")
    args = build_parser(prog).parse_args(argv)
    opts = DemoOptions(
        args.data_dir, args.host, args.mqtt_port, args.http_port, args.ordercore_port, args.devices
    )
    try:
        check_ports(opts)
        return asyncio.run(run_demo(opts))
    except PortInUseError as exc:
        print(f"{prog}: {exc.strerror}", file=sys.stderr)
        return 2
    except (SecretsFileError, ConfigError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


def say(line: str) -> None:
    """One line for the person at the terminal (stdout, flushed at once)."""
    print(line, flush=True)


def led_line(device_id: str, pattern: str, state: str) -> None:
    say(f"led {device_id} {pattern} {state}")


async def run_demo(opts: DemoOptions, *, on_ready: Callable[[], None] | None = None) -> int:
    """Start everything, serve until SIGINT/SIGTERM, stop everything; 0 on a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    paths = DemoPaths(opts.data_dir)
    secrets = load_secrets(paths.secrets)
    ready = await asyncio.to_thread(
        provision, paths, secrets, device_count=opts.devices, mqtt_url=opts.mqtt_url
    )
    save_secrets(paths.secrets, ready.secrets)
    async with AsyncExitStack() as stack:
        broker = EmbeddedBroker(
            opts.host, opts.mqtt_port, acl_file=paths.acl_file, registry_db=paths.ingest_db
        )
        await broker.start()
        stack.push_async_callback(broker.stop)
        core = await _serve(
            _ordercore_app(opts, paths, ready.secrets),
            opts.host,
            opts.ordercore_port,
            what="order core",
            flag="--ordercore-port",
        )
        stack.push_async_callback(core.cleanup)
        fleet = DemoFleet.from_files(list(ready.configs.values()), on_led=led_line)
        ingest = _ingest_app(opts, paths, ready.secrets, fleet)
        site = await _serve(
            ingest, opts.host, opts.http_port, what="dashboard/ingest", flag="--http-port"
        )
        stack.push_async_callback(site.cleanup)
        await fleet.start()
        stack.push_async_callback(fleet.stop)
        _banner(opts, paths, ready)
        if on_ready is not None:
            on_ready()
        await stop.wait()
        say("edgeorder demo is stopping ...")
    say("edgeorder demo stopped")
    return 0


def _ordercore_app(opts: DemoOptions, paths: DemoPaths, secrets: DemoSecrets) -> web.Application:
    from edgeorder.ordercore.app import create_app
    from edgeorder.ordercore.settings import SEED_CATALOG, Settings

    return create_app(
        Settings(
            data_dir=paths.ordercore_dir,
            host=opts.host,
            port=opts.ordercore_port,
            tokens=ordercore_token_specs(secrets)[0],
            catalog_seed=SEED_CATALOG,
        )
    )


def _ingest_app(
    opts: DemoOptions, paths: DemoPaths, secrets: DemoSecrets, fleet: DemoFleet
) -> web.Application:
    from edgeorder.ingest.app import create_app
    from edgeorder.ingest.connectors.settings import ConnectorSettings
    from edgeorder.ingest.settings import Settings

    settings = Settings(
        data_dir=paths.ingest_dir,
        mqtt_url=opts.mqtt_url,
        mqtt_username=INGEST_ACCOUNT,
        mqtt_password=secrets.ingest_mqtt_password,
        mqtt_client_id="edgeorder-demo-ingest",
        http_host=opts.host,
        http_port=opts.http_port,
        public_url=opts.dashboard_url,
        connector=ConnectorSettings(
            kind="ordercore",
            base_url=opts.ordercore_url,
            token=ordercore_token_specs(secrets)[1],
        ),
        webhook_secret=secrets.webhook_secret,
        admin_password=secrets.admin_password,
        broker_reads_registry=True,  # the embedded broker checks the registry at each CONNECT
        poll_interval_s=10.0,
    )
    app = create_app(settings, simulator=fleet)
    install_press_route(app, fleet)
    return app


async def _serve(
    app: web.Application, host: str, port: int, *, what: str, flag: str
) -> web.AppRunner:
    """Start ``app`` on ``host:port`` with the default connection limits (``edgeorder.httpserver``);
    a port taken since the check is still a PortInUseError."""
    limits = ServerLimits()
    runner = make_runner(app, limits, handle_signals=False)
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, limits=limits).start()
    except BaseException as exc:
        await runner.cleanup()
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            ensure_port_free(host, port, what=what, flag=flag)  # raises with the message
        raise
    return runner


def _banner(opts: DemoOptions, paths: DemoPaths, ready: Provisioned) -> None:
    devices = ", ".join(ready.configs) or "none"
    say(
        f"dashboard:       {opts.dashboard_url}/  (user admin, password "
        f"{ready.secrets.admin_password})"
    )
    say(
        f"order core API:  {opts.ordercore_url}/api  (Authorization: Bearer "
        f"{ready.secrets.ordercore_token})"
    )
    say(f"MQTT broker:     {opts.mqtt_url}  (per-device credentials, no anonymous access)")
    say(f"secrets:         {paths.secrets.resolve()}")
    say(f"firmware-config: {paths.firmware_dir.resolve()}/  ({devices})")
    say(
        f"press a device:  edgeorder demo press demo-01 single --data-dir {opts.data_dir} "
        f"--http-port {opts.http_port}"
    )
    say(f"{READY_LINE} (Ctrl-C to stop)")
