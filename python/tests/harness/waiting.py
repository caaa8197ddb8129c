"""Waiting on conditions, never on the clock: poll often, give up only after a generous bound
(CI machines are busy 2-core boxes)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How long a condition may take on a busy machine before the test fails.
DEFAULT_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.05


def wait_for(
    condition: Callable[[], T],
    what: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    details: Callable[[], str] = lambda: "",
) -> T:
    """Polls `condition` until it returns something truthy, and returns that. Fails with
    `what` (and `details()`, e.g. a server's log) after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what}\n{details()}"
            )
        time.sleep(POLL_INTERVAL_S)
