"""Drives a gpiozero ``LED`` or ``RGBLED`` with the patterns of ``protocol.led``.

gpiozero runs blinks on its own background thread; ``show()`` is called only by the agent's
worker and returns at once.
"""

from __future__ import annotations

from collections.abc import Callable

from gpiozero import LED, RGBLED, Factory
from gpiozero.exc import PinPWMUnsupported

from edgeorder.agent.config import LedConfig
from edgeorder.protocol.led import PATTERNS, Pattern, Rgb

__all__ = ["LedDriver"]

LedListener = Callable[[str, str], None]


def _binary(color: Rgb) -> Rgb:
    """Without PWM each channel is on or off (amber becomes yellow)."""
    red, green, blue = (1.0 if c > 0 else 0.0 for c in color)
    return (red, green, blue)


class LedDriver:
    """One device's LED; remembers the pattern shown so repeats are not re-driven."""

    def __init__(self, config: LedConfig, pin_factory: Factory | None = None) -> None:
        self._pwm = False
        self.device: LED | RGBLED
        if config.rgb is not None:
            pins = (config.rgb.red, config.rgb.green, config.rgb.blue)
            try:
                self.device = RGBLED(
                    *pins, active_high=config.active_high, pwm=True, pin_factory=pin_factory
                )
                self._pwm = True
            except PinPWMUnsupported:  # plain mock pins: each colour on or off
                self.device = RGBLED(
                    *pins, active_high=config.active_high, pwm=False, pin_factory=pin_factory
                )
        else:
            self.device = LED(config.pin, active_high=config.active_high, pin_factory=pin_factory)
        self.current: tuple[Pattern, str] | None = None

    def show(self, pattern: Pattern, state: str, *, restart: bool = False) -> bool:
        """Show ``pattern``; False (and nothing done) if it is already shown for ``state``.

        ``restart`` re-drives it even then (each new press gets its own acknowledgement blink).
        """
        if self.current == (pattern, state) and not restart:
            return False
        if restart or self.current is None or self.current[0] != pattern:
            self._drive(pattern)
        self.current = (pattern, state)
        return True

    def _drive(self, pattern: Pattern) -> None:
        blink = PATTERNS[pattern]
        dev = self.device
        if isinstance(dev, RGBLED):
            color = blink.color if self._pwm else _binary(blink.color)
            if blink.on_s == 0:
                dev.off()
            elif blink.off_s == 0:
                dev.color = color
            else:
                dev.blink(
                    on_time=blink.on_s,
                    off_time=blink.off_s,
                    fade_in_time=0,
                    fade_out_time=0,
                    on_color=color,
                    n=blink.n,
                    background=True,
                )
            return
        if blink.on_s == 0:
            dev.off()
        elif blink.off_s == 0:
            dev.on()
        else:
            dev.blink(on_time=blink.on_s, off_time=blink.off_s, n=blink.n, background=True)

    def close(self) -> None:
        self.device.close()
