"""`[control] socket` and `[notifications] poll_seconds`: read as documented, errors name the key."""

from __future__ import annotations

import pytest

from gateway.config import settings_from_mapping
from gateway.errors import ConfigError

SECRET = {"gateway": {"secret": "unit-secret-0123456789abcdef"}}


def test_the_control_socket_is_on_at_its_default_unless_named_or_turned_off() -> None:
    assert settings_from_mapping(SECRET).control.socket is None  # the default path
    named = settings_from_mapping(SECRET | {"control": {"socket": "/run/ticketgate/control.sock"}})
    assert named.control.socket == "/run/ticketgate/control.sock"
    assert settings_from_mapping(SECRET | {"control": {"socket": ""}}).control.socket == ""  # off
    assert settings_from_mapping(SECRET | {"control": {"socket": " "}}).control.socket == ""


def test_a_control_socket_that_is_not_a_string_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"control\.socket"):
        settings_from_mapping(SECRET | {"control": {"socket": False}})


def test_the_sender_polls_every_second_unless_told() -> None:
    assert settings_from_mapping(SECRET).notifications.poll_seconds == 1.0
    hourly = settings_from_mapping(SECRET | {"notifications": {"poll_seconds": 3600}})
    assert hourly.notifications.poll_seconds == 3600.0
    with pytest.raises(ConfigError, match=r"notifications\.poll_seconds"):
        settings_from_mapping(SECRET | {"notifications": {"poll_seconds": 0}})
