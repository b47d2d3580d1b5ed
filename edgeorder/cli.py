"""``edgeorder <command> ...``: dispatches to each component's own ``main(argv, prog)``.

Each subcommand lives with the component it belongs to and parses its own options, so
``edgeorder agent --help`` on a Pi never imports the backend.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from edgeorder import __version__
from edgeorder.logs import configure_logging

# name -> (module with ``main(argv, prog) -> int``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "edgeorder.demo.cli",
        "run everything on one machine: broker, order core, ingest, "
        "dashboard and simulated devices (also: demo press DEVICE)",
    ),
    "agent": ("edgeorder.agent.cli", "run the device agent (GPIO button/sensor -> MQTT -> LED)"),
    "ingest": (
        "edgeorder.ingest.cli.run",
        "run the backend: MQTT events -> orders, status back, dashboard",
    ),
    "ordercore": ("edgeorder.ordercore.cli", "run the built-in order core HTTP service"),
    "device": (
        "edgeorder.ingest.cli.device",
        "manage the device registry: add, list, show, disable, enable, remove, rotate-credentials",
    ),
    "evendi": (
        "edgeorder.ingest.cli.evendi",
        "queue open e-vendi orders for devices: assign, list, show, withdraw, requeue",
    ),
    "broker-auth": (
        "edgeorder.ingest.cli.broker_auth",
        "write a Mosquitto password file and ACL from the device registry",
    ),
    "tls": (
        "edgeorder.ingest.cli.tls",
        "create the project's CA (once) and the MQTT broker's TLS certificate",
    ),
    "bench": ("edgeorder.bench.cli", "measure end-to-end throughput and latency on this machine"),
}


TOOLS = frozenset({"device", "evendi", "broker-auth", "tls"})
"""Commands that run once and end: an unexpected failure is one line on stderr, exit 1."""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeorder",
        description="edgeorder: a button or sensor on a Raspberry Pi becomes a commerce order, "
        "exactly once, and its LED says what happened.",
        epilog="Run 'edgeorder COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"edgeorder {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="debug, info, warning, error (env EDGEORDER_LOG_LEVEL; default info)",
    )
    parser.add_argument(
        "--log-format",
        choices=["json", "console"],
        default=None,
        help="log renderer (env EDGEORDER_LOG_FORMAT; default: console on a "
        "terminal, JSON otherwise)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


SERVER_MODULES = frozenset(
    {
        "aiohttp",
        "sqlite_utils",
        "argon2",
        "prometheus_client",
        "tomli_w",
        "amqtt",
        "orjson",
        "cryptography",
        "pydantic",
        "pydantic_core",
        "ulid",
    }
)
"""Third-party modules of the ``[server]`` extra (the base install is the agent's)."""


class MissingExtraError(RuntimeError):
    """A command needs a dependency of an extra that is not installed."""


def load_command(name: str) -> Callable[[list[str], str], int]:
    """Import the module of subcommand ``name`` and return its ``main``.

    Raises MissingExtraError when the command needs the ``[server]`` extra and it is missing
    (an agent-only install on a Pi running ``edgeorder ingest``, say)."""
    module_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in SERVER_MODULES:
            raise
        raise MissingExtraError(
            f"'edgeorder {name}' needs the backend dependencies ({exc.name} is missing): "
            "pip install 'edgeorder[server]' (from a checkout: pip install -e '.[server]')"
        ) from exc
    entry: Callable[[list[str], str], int] = module.main
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    # Split at the subcommand: everything after it belongs to the subcommand's own parser.
    split = next((i for i, a in enumerate(args_list) if a in COMMANDS), len(args_list))
    top = parser.parse_args(args_list[: split + 1] if split < len(args_list) else args_list)
    if top.command is None:
        parser.print_help()
        return 2
    configure_logging(top.log_level, top.log_format)
    try:
        command = load_command(top.command)
    except MissingExtraError as exc:
        print(f"edgeorder: {exc}", file=sys.stderr)
        return 2
    try:
        return command(args_list[split + 1 :], f"edgeorder {top.command}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if top.command not in TOOLS or top.log_level == "debug":
            raise  # a service's crash keeps its traceback
        # A tool's failure it did not word itself (a database that cannot be opened, a
        # directory that cannot be written): one line, not a traceback.
        print(f"edgeorder {top.command}: error: {_describe(exc)}", file=sys.stderr)
        print("(--log-level debug before the command shows the traceback)", file=sys.stderr)
        return 1
