"""The worker's settings, read from Django settings once and checked before anything starts.

| Django setting                    | default                  | what it is                                   |
| --------------------------------- | ------------------------ | -------------------------------------------- |
| GRADECAST_NATS_URL                | "nats://127.0.0.1:4222"  | NATS server URL(s): a list, or comma-separated |
| GRADECAST_NATS_CREDENTIALS_FILE   | None                     | NATS .creds file (user JWT and NKey seed)     |
| GRADECAST_NATS_TOKEN              | None                     | NATS auth token                               |
| GRADECAST_NATS_USER / _PASSWORD   | None                     | NATS user and password                        |
| GRADECAST_NATS_TLS_CA_FILE        | None                     | connect over TLS, trusting this PEM CA        |
| GRADECAST_STREAM                  | "GRADECAST_SCORES"       | JetStream stream holding the events           |
| GRADECAST_SUBJECT_PREFIX          | "gradecast"              | gradecast's --subject-prefix                  |
| GRADECAST_DURABLE_NAME            | "openedx-lms"            | durable consumer: resumes where it stopped    |
| GRADECAST_QUEUES                  | [] (every queue)         | grader queue names to take                    |
| GRADECAST_MAX_DELIVER             | 5                        | deliveries before an event is dead-lettered   |
| GRADECAST_ACK_WAIT_S              | 30                       | redelivery after this long without an ack     |
| GRADECAST_BACKOFF_S               | [1, 2, 4, 8, 16, 32, 60] | redelivery delay after failed delivery n (the last repeats) |
| GRADECAST_BATCH_SIZE              | 10                       | events fetched per pull request               |
| GRADECAST_HEALTH_FILE             | None                     | JSON status file the worker rewrites          |
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .subjects import subject_prefix_problem

#: JetStream stream and consumer names: no whitespace, `.`, `*`, `>`, `/` or `\`.
_JETSTREAM_NAME = re.compile(r"^[^\s.*>/\\]+$")


@dataclass(frozen=True)
class BridgeSettings:
    """Every setting of the worker, defaults applied (see the module's table)."""

    nats_urls: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    nats_credentials_file: str | None = None
    nats_token: str | None = field(default=None, repr=False)
    nats_user: str | None = None
    nats_password: str | None = field(default=None, repr=False)
    nats_tls_ca_file: str | None = None
    stream: str = "GRADECAST_SCORES"
    subject_prefix: str = "gradecast"
    durable_name: str = "openedx-lms"
    queues: tuple[str, ...] = ()
    max_deliver: int = 5
    ack_wait_s: float = 30.0
    backoff_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
    batch_size: int = 10
    health_file: str | None = None

    def backoff_after(self, delivery_count: int) -> float:
        """Redelivery delay after failed delivery number `delivery_count` (1 for the first)."""
        index = min(max(delivery_count, 1), len(self.backoff_s)) - 1
        return self.backoff_s[index]

    @property
    def working_interval_s(self) -> float:
        """How often held events get `in_progress()`: well within the ack wait."""
        return self.ack_wait_s / 3

    @property
    def max_ack_pending(self) -> int:
        """Events delivered and not yet acknowledged: one batch being worked, one arriving."""
        return self.batch_size * 2


# Django setting name -> BridgeSettings field.
_SETTING_NAMES = {
    "GRADECAST_NATS_URL": "nats_urls",
    "GRADECAST_NATS_CREDENTIALS_FILE": "nats_credentials_file",
    "GRADECAST_NATS_TOKEN": "nats_token",
    "GRADECAST_NATS_USER": "nats_user",
    "GRADECAST_NATS_PASSWORD": "nats_password",
    "GRADECAST_NATS_TLS_CA_FILE": "nats_tls_ca_file",
    "GRADECAST_STREAM": "stream",
    "GRADECAST_SUBJECT_PREFIX": "subject_prefix",
    "GRADECAST_DURABLE_NAME": "durable_name",
    "GRADECAST_QUEUES": "queues",
    "GRADECAST_MAX_DELIVER": "max_deliver",
    "GRADECAST_ACK_WAIT_S": "ack_wait_s",
    "GRADECAST_BACKOFF_S": "backoff_s",
    "GRADECAST_BATCH_SIZE": "batch_size",
    "GRADECAST_HEALTH_FILE": "health_file",
}


def load_bridge_settings(django_settings: Any, **overrides: Any) -> BridgeSettings:
    """Reads the GRADECAST_* Django settings, applies `overrides` (BridgeSettings field names,
    e.g. from command options; None means "not given") and checks the result. Raises
    ImproperlyConfigured naming the first unusable setting."""
    values: dict[str, Any] = {}
    for setting, name in _SETTING_NAMES.items():
        value = getattr(django_settings, setting, None)
        if value is not None:
            values[name] = value
    values.update({name: value for name, value in overrides.items() if value is not None})
    setting_of = {name: setting for setting, name in _SETTING_NAMES.items()}

    def fail(name: str, problem: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{setting_of.get(name, name)} {problem}")

    if "nats_urls" in values:
        urls = values["nats_urls"]
        urls = urls.split(",") if isinstance(urls, str) else list(urls)
        values["nats_urls"] = tuple(url.strip() for url in urls if url.strip())
        if not values["nats_urls"]:
            raise fail("nats_urls", "names no server")
    if "queues" in values:
        queues = values["queues"]
        if isinstance(queues, str):
            raise fail("queues", "must be a list of queue names, not one string")
        values["queues"] = tuple(queues)
        if any(not isinstance(q, str) or q.strip() == "" or q != q.strip() for q in queues):
            raise fail("queues", "must hold queue names (non-empty, no whitespace at either end)")
    if "backoff_s" in values:
        backoff = tuple(float(s) for s in values["backoff_s"])
        if not backoff or any(not math.isfinite(s) or s < 0 for s in backoff):
            raise fail("backoff_s", "must be a non-empty list of seconds >= 0")
        values["backoff_s"] = backoff
    settings = BridgeSettings(**values)

    for name in ("stream", "durable_name"):
        if not _JETSTREAM_NAME.match(getattr(settings, name)):
            raise fail(name, f"{getattr(settings, name)!r} is not a JetStream name")
    problem = subject_prefix_problem(settings.subject_prefix)
    if problem is not None:
        raise fail("subject_prefix", problem)
    for name in ("max_deliver", "batch_size"):
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail(name, f"must be a whole number >= 1, got {value!r}")
    if not isinstance(settings.ack_wait_s, (int, float)) or settings.ack_wait_s < 1:
        raise fail("ack_wait_s", f"must be >= 1 second, got {settings.ack_wait_s!r}")
    if settings.nats_token is not None and settings.nats_credentials_file is not None:
        raise fail("nats_token", "and GRADECAST_NATS_CREDENTIALS_FILE exclude each other")
    return settings
