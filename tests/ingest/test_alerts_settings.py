"""The alert settings: command line and environment, defaults, range checks, ``--help``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgeorder.ingest.cli.run import _parser, build_settings, main
from edgeorder.ingest.settings import Settings


def test_defaults_are_sane() -> None:
    s = Settings()
    assert (s.alert_interval_s, s.alert_offline_s, s.alert_clear_hold_s) == (15.0, 300.0, 30.0)
    assert s.alert_webhook_url is None
    assert s.alert_smtp_host is None


def test_options_and_environment_set_them_the_command_line_wins() -> None:
    args = _parser("edgeorder ingest").parse_args(
        ["--alert-offline-s", "90", "--alert-smtp-to", "a@x.test, b@x.test"]
    )
    env = {
        "EDGEORDER_INGEST_ALERT_OFFLINE_S": "30",
        "EDGEORDER_INGEST_ALERT_SMTP_HOST": "mail.test",
        "EDGEORDER_INGEST_ALERT_SMTP_FROM": "eo@x.test",
        "EDGEORDER_INGEST_ALERT_SMTP_STARTTLS": "true",
        "EDGEORDER_INGEST_ALERT_WEBHOOK_URL": "https://hooks.test/eo",
        "EDGEORDER_INGEST_ALERT_WEBHOOK_SECRET": "k",
    }
    s = build_settings(args, env)
    assert s.alert_offline_s == 90
    assert s.alert_smtp_recipients == ["a@x.test", "b@x.test"]
    assert s.alert_smtp_starttls is True
    assert s.alert_webhook_url == "https://hooks.test/eo"


@pytest.mark.parametrize(
    "values",
    [
        {"alert_interval_s": 0},
        {"alert_failure_ratio": 1.5},
        {"alert_failure_count": 0},
        {"alert_clear_hold_s": -1},
        {"alert_smtp_port": 70000},
        {"alert_webhook_url": "ftp://x"},
        {"alert_webhook_url": "https://x"},  # no secret
        {"alert_smtp_host": "mail.test"},  # no from/to
    ],
)
def test_out_of_range_and_incomplete_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate(values)


def test_help_explains_every_alert_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"], "edgeorder ingest")
    out = " ".join(capsys.readouterr().out.split())
    for field in Settings.model_fields:
        if field.startswith("alert_"):
            assert "--" + field.replace("_", "-") in out
    assert "alert when a device has been offline longer than this many seconds" in out


def test_a_bad_alert_setting_stops_the_start_with_its_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--alert-failure-ratio", "2"], "edgeorder ingest") == 2
    assert "alert_failure_ratio" in capsys.readouterr().err
