"""The LED vocabulary of ARCHITECTURE.md as pure data, and the pure pattern chooser.

``choose_pattern(inputs, now)`` picks what the LED shows from the latest status, connectivity
and the last local press; it also says until when that choice holds, so the worker re-chooses
then (timed patterns: ``ordered`` for 3 s, two/three blinks, the press acknowledgement).

One copy for both sides: the agent drives its LED with it, and ingest's dashboard tells the
operator what a device's LED shows (``DESCRIPTIONS``) from the statuses it confirmed sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from edgeorder.protocol.reasons import is_nothing_to_do
from edgeorder.protocol.values import State

__all__ = [
    "DESCRIPTIONS",
    "PATTERNS",
    "Blink",
    "Choice",
    "LedInputs",
    "Pattern",
    "Rgb",
    "choose_pattern",
]

Rgb = tuple[float, float, float]


class Pattern(StrEnum):
    """Names printed as ``led <pattern> <state>`` and passed to ``on_led``."""

    PRESS_ACK = "press_ack"
    WAITING = "waiting"
    ACCEPTED = "accepted"
    ORDERED = "ordered"
    NOTHING = "nothing"
    CANCELLED = "cancelled"
    THROTTLED = "throttled"
    ERROR = "error"
    OFFLINE = "offline"
    OFF = "off"


@dataclass(frozen=True)
class Blink:
    """How a pattern drives the LED. ``on_s == 0`` is off, ``off_s == 0`` is steady on;
    ``n`` blinks then off (None: forever). ``color`` is for an RGB LED."""

    on_s: float
    off_s: float
    n: int | None
    color: Rgb

    @property
    def duration_s(self) -> float | None:
        return None if self.n is None else self.n * (self.on_s + self.off_s)


WHITE: Rgb = (1.0, 1.0, 1.0)
AMBER: Rgb = (1.0, 0.5, 0.0)
GREEN: Rgb = (0.0, 1.0, 0.0)
BLUE: Rgb = (0.0, 0.0, 1.0)
RED: Rgb = (1.0, 0.0, 0.0)
MAGENTA: Rgb = (1.0, 0.0, 1.0)
DIM_WHITE: Rgb = (0.3, 0.3, 0.3)
BLACK: Rgb = (0.0, 0.0, 0.0)

PATTERNS: dict[Pattern, Blink] = {
    Pattern.PRESS_ACK: Blink(0.10, 0.05, 1, WHITE),  # one short blink
    Pattern.WAITING: Blink(0.50, 0.50, None, AMBER),  # slow blink
    Pattern.ACCEPTED: Blink(0.10, 0.10, None, AMBER),  # fast blink
    Pattern.ORDERED: Blink(3.0, 0.0, None, GREEN),  # on (3 s, timed by the chooser)
    Pattern.NOTHING: Blink(1.0, 0.2, 1, DIM_WHITE),  # one long blink (agent/README.md)
    Pattern.CANCELLED: Blink(0.6, 0.3, 2, MAGENTA),  # two long blinks (agent/README.md)
    Pattern.THROTTLED: Blink(0.20, 0.20, 2, BLUE),  # two blinks
    Pattern.ERROR: Blink(0.20, 0.20, 3, RED),  # three blinks
    Pattern.OFFLINE: Blink(0.10, 4.90, None, RED),  # heartbeat every 5 s
    Pattern.OFF: Blink(0.0, 0.0, None, BLACK),
}

DESCRIPTIONS: dict[Pattern, tuple[str, str]] = {
    Pattern.PRESS_ACK: ("one short blink", "white blink"),
    Pattern.WAITING: ("slow blink", "amber blink"),
    Pattern.ACCEPTED: ("fast blink", "amber fast blink"),
    Pattern.ORDERED: ("on", "green solid"),
    Pattern.THROTTLED: ("two blinks", "blue two blinks"),
    Pattern.ERROR: ("three blinks", "red three blinks"),
    Pattern.OFFLINE: ("heartbeat blink every 5 s", "red heartbeat"),
    Pattern.NOTHING: ("one long blink", "dim white long blink"),
    Pattern.CANCELLED: ("two long blinks", "magenta two long blinks"),
    Pattern.OFF: ("off", "off"),
}
"""How each pattern looks, in words: (single LED, RGB LED), as ARCHITECTURE.md names them."""

PRESS_ACK_S = 0.15
ORDERED_S = 3.0
ACCEPTED_MAX_S = 120.0
"""An ``accepted``/``queued`` event shows fast blink until its next status, at most this long."""

NOTHING_S = 1.2
"""A press that led to nothing, as intended (``protocol.is_nothing_to_do``): one long blink."""

_STATUS_PATTERN: dict[State, tuple[Pattern, float]] = {
    State.ACCEPTED: (Pattern.ACCEPTED, ACCEPTED_MAX_S),
    State.QUEUED: (Pattern.ACCEPTED, ACCEPTED_MAX_S),
    State.ORDERED: (Pattern.ORDERED, ORDERED_S),
    State.PAID: (Pattern.ORDERED, ORDERED_S),
    State.CANCELLED: (Pattern.CANCELLED, 1.8),
    State.THROTTLED: (Pattern.THROTTLED, 0.8),
    State.REJECTED: (Pattern.ERROR, 1.2),
    State.FAILED: (Pattern.ERROR, 1.2),
}


@dataclass(frozen=True)
class LedInputs:
    """Everything the chooser looks at; times are monotonic seconds."""

    connected: bool = False
    press_at: float | None = None
    awaiting: bool = False  # an event was made and no status for it has arrived yet
    status: State | None = None
    status_at: float | None = None
    reason: str | None = None  # the status's reason: "nothing to do" is told apart by it


@dataclass(frozen=True)
class Choice:
    pattern: Pattern
    state: str  # what caused it: a status value, "offline", "pressed", "pending", "idle"
    until: float | None  # re-choose at this time (None: until the inputs change)


def choose_pattern(inputs: LedInputs, now: float) -> Choice:
    """The pattern to show at ``now``."""
    if inputs.press_at is not None and now < inputs.press_at + PRESS_ACK_S:
        return Choice(Pattern.PRESS_ACK, "pressed", inputs.press_at + PRESS_ACK_S)
    if not inputs.connected:
        return Choice(Pattern.OFFLINE, "offline", None)
    if inputs.awaiting:
        return Choice(Pattern.WAITING, "pending", None)
    if inputs.status is not None and inputs.status_at is not None:
        timed = _STATUS_PATTERN.get(inputs.status)
        if is_nothing_to_do(inputs.status, inputs.reason):
            timed = (Pattern.NOTHING, NOTHING_S)
        if timed is not None and now < inputs.status_at + timed[1]:
            return Choice(timed[0], inputs.status.value, inputs.status_at + timed[1])
        return Choice(Pattern.OFF, inputs.status.value, None)
    return Choice(Pattern.OFF, "idle", None)
