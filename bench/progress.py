"""A plain-text progress bar on stderr: redrawn in place on a terminal, a line now and then
otherwise (CI logs). No dependency."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from edgeorder.bench.tracker import PhaseCounts
from edgeorder.protocol import State

__all__ = ["Progress", "render_bar"]


def render_bar(done: int, total: int, width: int = 24) -> str:
    """``[#########...............]`` for ``done`` of ``total`` (pure)."""
    filled = 0 if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


class Progress:
    """Shows one phase at a time: published / accepted / ordered counts and the ordered rate."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        line_every_s: float = 2.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.clock = clock
        self.tty = self.stream.isatty()
        self.line_every_s = line_every_s
        self._phase = ""
        self._started = 0.0
        self._last_line = 0.0
        self._width = 0

    def begin(self, phase: str) -> None:
        self.finish()
        self._phase = phase
        self._started = self._last_line = self.clock()

    def note(self, text: str) -> None:
        """A one-off line (phase start, service start)."""
        if self.enabled:
            self.finish()
            print(f"bench: {text}", file=self.stream, flush=True)

    def update(self, counts: PhaseCounts, target: State = State.ORDERED) -> None:
        if not self.enabled:
            return
        now = self.clock()
        done = counts.reached(target)
        elapsed = now - self._started
        speed = done / elapsed if elapsed > 0 else 0.0
        line = (
            f"{self._phase:<9} {render_bar(done, counts.expected)} {done}/{counts.expected} "
            f"{target.value}  published {counts.published}  accepted "
            f"{counts.reached(State.ACCEPTED)}  {speed:,.0f}/s  {elapsed:5.1f}s"
        )
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
            self._width = len(line)
        elif now - self._last_line >= self.line_every_s:
            self._last_line = now
            print(line, file=self.stream, flush=True)

    def finish(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._width = 0
