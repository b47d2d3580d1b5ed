"""The link's start-up check of the paho-mqtt internals it overrides."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edgeorder.ingest.mqtt.link import PahoCompatibilityError, check_paho_internals


def test_the_installed_paho_has_every_internal_the_link_overrides() -> None:
    check_paho_internals()


def test_a_paho_without_an_overridden_method_fails_with_a_clear_message() -> None:
    class Renamed(mqtt.Client):
        _handle_pubackcomp = None  # type: ignore[assignment]

    with pytest.raises(PahoCompatibilityError, match=r"_handle_pubackcomp.*paho-mqtt>=2\.1,<2\.3"):
        check_paho_internals(Renamed)


def test_a_paho_whose_override_changed_its_parameters_fails() -> None:
    class Changed(mqtt.Client):
        def _sock_recv(self, size: int) -> bytes:
            return b""

    with pytest.raises(PahoCompatibilityError, match="_sock_recv"):
        check_paho_internals(Changed)


def test_a_paho_without_a_private_attribute_fails() -> None:
    class NoOutMessages(mqtt.Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            del self._out_messages

    with pytest.raises(PahoCompatibilityError, match="attribute _out_messages"):
        check_paho_internals(NoOutMessages)
