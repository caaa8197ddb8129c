"""Each unusable GRADECAST_* setting is refused before the worker starts, naming itself."""

from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from gradecast_openedx.bridge_settings import BridgeSettings, load_bridge_settings


def test_defaults_and_overrides():
    settings = load_bridge_settings(
        SimpleNamespace(GRADECAST_NATS_URL="nats://a:4222, nats://b:4222", GRADECAST_QUEUES=["q"]),
        durable_name="lms-2",
        queues=None,  # not given on the command line: the setting stands
    )
    assert settings.nats_urls == ("nats://a:4222", "nats://b:4222")
    assert (settings.durable_name, settings.queues, settings.stream) == (
        "lms-2",
        ("q",),
        "GRADECAST_SCORES",
    )
    assert [settings.backoff_after(n) for n in (1, 2, 7, 8, 100)] == [1, 2, 60, 60, 60]
    assert settings.working_interval_s == 10
    assert "secret" not in repr(BridgeSettings(nats_token="secret", nats_password="secret"))


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("GRADECAST_NATS_URL", " , ", "GRADECAST_NATS_URL names no server"),
        ("GRADECAST_STREAM", "SCORES.V1", "GRADECAST_STREAM 'SCORES.V1' is not a JetStream name"),
        ("GRADECAST_DURABLE_NAME", "lms lms", "GRADECAST_DURABLE_NAME 'lms lms' is not"),
        ("GRADECAST_SUBJECT_PREFIX", "grade*", "GRADECAST_SUBJECT_PREFIX token 'grade*'"),
        ("GRADECAST_QUEUES", "python-grader", "GRADECAST_QUEUES must be a list"),
        ("GRADECAST_QUEUES", [" q"], "GRADECAST_QUEUES must hold queue names"),
        ("GRADECAST_MAX_DELIVER", 0, "GRADECAST_MAX_DELIVER must be a whole number >= 1"),
        ("GRADECAST_BATCH_SIZE", 2.5, "GRADECAST_BATCH_SIZE must be a whole number >= 1"),
        ("GRADECAST_ACK_WAIT_S", 0.5, "GRADECAST_ACK_WAIT_S must be >= 1 second"),
        ("GRADECAST_BACKOFF_S", [], "GRADECAST_BACKOFF_S must be a non-empty list"),
        ("GRADECAST_BACKOFF_S", [1, -1], "GRADECAST_BACKOFF_S must be a non-empty list"),
    ],
)
def test_an_unusable_setting_is_refused_by_name(setting, value, message):
    with pytest.raises(ImproperlyConfigured, match=message.replace("*", r"\*")):
        load_bridge_settings(SimpleNamespace(**{setting: value}))


def test_a_token_and_a_credentials_file_exclude_each_other():
    with pytest.raises(ImproperlyConfigured, match="exclude each other"):
        load_bridge_settings(
            SimpleNamespace(GRADECAST_NATS_TOKEN="t", GRADECAST_NATS_CREDENTIALS_FILE="/x.creds")
        )
