"""``edgeorder agent --config FILE [--simulate]``: run one device agent.

On a Raspberry Pi the agent drives real GPIO (gpiozero's default factory, lgpio). With
``--simulate``, or on any other machine, it uses gpiozero's MockFactory and reads commands from
stdin (``press``, ``double``, ``long``, ``sensor NAME VALUE``, ``quit``) and prints every LED
change as ``led <pattern> <state>``. SIGTERM/SIGINT shut it down cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from gpiozero import Factory

from edgeorder.agent.config import load_config
from edgeorder.agent.errors import AgentError, ConfigError
from edgeorder.agent.runtime import Agent

__all__ = ["main", "on_a_pi", "parse_command"]

log = structlog.get_logger(__name__)

HELP_COMMANDS = "press | double | long | sensor NAME VALUE | quit"


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the device agent: GPIO button/sensor -> durable events over MQTT -> "
        "LED status.",
        epilog=f"stdin commands with --simulate: {HELP_COMMANDS}. "
        "LED changes are printed as 'led <pattern> <state>'.",
    )
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="the device's firmware-config TOML (see firmware-config/examples/)",
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="use gpiozero's MockFactory and read button/sensor commands from "
        "stdin (automatic when not on a Raspberry Pi)",
    )
    return parser


def on_a_pi() -> bool:
    """True on a Raspberry Pi (or when GPIOZERO_PIN_FACTORY names a factory explicitly)."""
    if os.environ.get("GPIOZERO_PIN_FACTORY"):
        return True
    try:
        return "raspberry pi" in Path("/proc/device-tree/model").read_text().lower()
    except OSError:
        return False


def parse_command(line: str) -> tuple[str, tuple[Any, ...]] | None:
    """``press`` -> ("press", ("single",)); ``sensor beans 3.5`` -> ("sensor", ("beans", 3.5));
    ``quit`` -> ("quit", ()); blank -> None. Raises ValueError for anything else."""
    words = line.split()
    if not words:
        return None
    head, args = words[0].lower(), words[1:]
    clicks = {"press": "single", "single": "single", "double": "double", "long": "long"}
    if head in clicks and not args:
        return "press", (clicks[head],)
    if head == "quit" and not args:
        return "quit", ()
    if head == "sensor" and len(args) == 2:
        try:
            return "sensor", (args[0], float(args[1]))
        except ValueError:
            raise ValueError(f"sensor value {args[1]!r} is not a number") from None
    raise ValueError(f"unknown command {line.strip()!r}; use: {HELP_COMMANDS}")


def _read_stdin(agent: Agent, quit_: Callable[[], None]) -> None:
    """Stdin thread: parse lines, hand them to the agent's thread-safe methods."""
    for line in sys.stdin:
        try:
            cmd = parse_command(line)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            continue
        if cmd is None:
            continue
        name, args = cmd
        if name == "quit":
            break
        try:
            if name == "press":
                agent.press(*args)
            else:
                agent.sensor(*args)
        except (AgentError, TimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
    quit_()


def _print_led(pattern: str, state: str) -> None:
    print(f"led {pattern} {state}", flush=True)


async def _run(config_path: Path, simulate: bool) -> int:
    config = load_config(config_path)
    factory: Factory | None = None
    if simulate:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        factory = MockFactory(pin_class=MockPWMPin)
    agent = Agent(config, pin_factory=factory, on_led=_print_led if simulate else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0)  # let run() start, so the stdin thread finds the agent running
    if simulate:
        threading.Thread(
            target=_read_stdin,
            args=(agent, lambda: _threadsafe_set(loop, stop)),
            name="stdin",
            daemon=True,
        ).start()
    await task
    return 0


def _threadsafe_set(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:  # already shut down
        pass


def main(argv: list[str], prog: str = "edgeorder agent") -> int:
    """Entry point of ``edgeorder agent``."""
    args = _parser(prog).parse_args(argv)
    simulate = args.simulate or not on_a_pi()
    try:
        return asyncio.run(_run(args.config, simulate))
    except ConfigError as exc:
        print(f"{prog}: invalid config:", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 2
    except AgentError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
