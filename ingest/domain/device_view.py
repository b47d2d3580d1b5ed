"""What the dashboard says about a device besides its rows: the LED as the device shows it,
and how long it has been offline. Pure: stored values and ``now`` in, plain values out.

The LED is derived with the agent's own chooser (``protocol.led``) from what the device
was told: the latest status ingest *confirmed* publishing (``status_history.published_at``,
the broker's PUBACK), at the time it was confirmed. An event the device sent that has no
confirmed status yet is what the device waits on (slow blink). A device that is offline
shows its link-down heartbeat, if it still runs at all: ingest cannot know, so it says so.
Ingest does not know whether a device has a single or an RGB LED (that is the agent's local
config), so both readings are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edgeorder.protocol.led import DESCRIPTIONS, LedInputs, Pattern, choose_pattern
from edgeorder.protocol.models import State

__all__ = ["LedView", "duration_text", "led_view", "parse_stored_ts"]


@dataclass(frozen=True)
class LedView:
    """``pattern`` None: unknown (the device is offline or never seen). ``cause`` is the
    status (or "pending", "idle") that chose the pattern, ``since`` when it was confirmed."""

    pattern: Pattern | None
    cause: str
    since: str | None

    @property
    def single(self) -> str:
        return "unknown" if self.pattern is None else DESCRIPTIONS[self.pattern][0]

    @property
    def rgb(self) -> str:
        return "unknown" if self.pattern is None else DESCRIPTIONS[self.pattern][1]


def parse_stored_ts(text: str) -> datetime:
    """A stored ``protocol.format_ts`` timestamp (``...Z``) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def led_view(
    *,
    online: bool,
    status: str | None,
    confirmed_at: str | None,
    awaiting_since: str | None,
    now: datetime,
    reason: str | None = None,
) -> LedView:
    """The LED of a device at ``now``.

    ``status``/``confirmed_at``: its latest confirmed status; ``awaiting_since``: when ingest
    received its latest event if no status of that event is confirmed yet (else None);
    ``reason``: the status's reason ("nothing to do" shows as its own pattern).
    """
    if not online:
        return LedView(None, "offline", None)
    if awaiting_since is not None:
        return LedView(Pattern.WAITING, "pending", awaiting_since)
    try:
        state = State(status) if status else None
    except ValueError:  # a state this release does not know: it lights nothing it knows
        state = None
    if state is None or confirmed_at is None:
        return LedView(Pattern.OFF, "idle", None)
    at = parse_stored_ts(confirmed_at).timestamp()
    inputs = LedInputs(connected=True, status=state, status_at=at, reason=reason)
    choice = choose_pattern(inputs, now.timestamp())
    return LedView(choice.pattern, choice.state, confirmed_at)


def duration_text(seconds: float) -> str:
    """``3 h 2 min``, ``12 min``, ``40 s``, ``2 d 5 h``: two units at most, rounded down."""
    s = max(0, int(seconds))
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
