"""gpiozero devices of one agent: the button and the optional sensor, on an injected factory.

Callbacks from gpiozero threads only hand an ``Edge`` to the worker; sensor readings are
polled by the worker itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gpiozero import (
    MCP3008,
    Button,
    DigitalInputDevice,
    DistanceSensor,
    Factory,
    GPIODevice,
    LightSensor,
    SPIDevice,
)
from gpiozero.pins.mock import MockFactory

from edgeorder.agent.config import (
    ButtonConfig,
    DistanceSensorConfig,
    LevelSwitchConfig,
    LightSensorConfig,
    Mcp3008SensorConfig,
    SensorConfig,
)

__all__ = ["Edge", "SensorReader", "is_mock", "make_button", "make_sensor_reader"]


@dataclass(frozen=True)
class Edge:
    """A button edge seen on a gpiozero thread; ``at`` is ``time.monotonic()`` then."""

    pressed: bool
    at: float


def is_mock(pin_factory: Factory | None) -> bool:
    """True for gpiozero's MockFactory (given, or the process default)."""
    if pin_factory is None:
        from gpiozero import Device

        pin_factory = Device.pin_factory
    return isinstance(pin_factory, MockFactory)


def make_button(
    config: ButtonConfig,
    pin_factory: Factory | None,
    handoff: Callable[[Edge], None],
    clock: Callable[[], float] = time.monotonic,
) -> Button:
    """A gpiozero Button whose edges go to ``handoff`` with their time."""
    button = Button(
        config.pin,
        pull_up=config.pull_up,
        bounce_time=config.bounce_ms / 1000 if config.bounce_ms else None,
        pin_factory=pin_factory,
    )
    button.when_pressed = lambda: handoff(Edge(True, clock()))
    button.when_released = lambda: handoff(Edge(False, clock()))
    return button


@dataclass
class SensorReader:
    """A gpiozero input and how to turn it into one number."""

    name: str
    device: GPIODevice | SPIDevice
    read: Callable[[], float]

    def close(self) -> None:
        self.device.close()


def make_sensor_reader(config: SensorConfig, pin_factory: Factory | None) -> SensorReader | None:
    """The device for ``config``, or None when it cannot exist on this factory.

    On MockFactory only the level switch is a real (drivable) mock pin; the analogue sensors
    are simulated through ``Agent.sensor(name, value)``.
    """
    mock = is_mock(pin_factory)
    if isinstance(config, LevelSwitchConfig):
        dev = DigitalInputDevice(config.pin, pull_up=config.pull_up, pin_factory=pin_factory)
        return SensorReader(config.name, dev, lambda: float(dev.value))
    if mock:
        return None
    if isinstance(config, DistanceSensorConfig):
        dist = DistanceSensor(
            echo=config.echo,
            trigger=config.trigger_pin,
            max_distance=config.max_distance_m,
            pin_factory=pin_factory,
        )
        return SensorReader(config.name, dist, lambda: float(dist.distance))
    if isinstance(config, LightSensorConfig):
        light = LightSensor(config.pin, pin_factory=pin_factory)
        return SensorReader(config.name, light, lambda: float(light.value))
    assert isinstance(config, Mcp3008SensorConfig)
    adc = MCP3008(channel=config.channel, device=config.spi_device, pin_factory=pin_factory)
    return SensorReader(config.name, adc, lambda: float(adc.value))
