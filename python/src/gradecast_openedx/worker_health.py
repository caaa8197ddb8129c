"""The worker's health, as a small JSON file a probe can read (GRADECAST_HEALTH_FILE).

The worker rewrites it on every state change and after every pull (at least every
FETCH_TIMEOUT_S while idle), so a file older than a minute means a stuck or dead worker:
    {"state": "running", "pid": 4242, "consumer": "openedx-lms", "stream": "GRADECAST_SCORES",
     "updated_at": "2026-11-26T16:00:00.123456+00:00", "counts": {"applied": 3, ...},
     "last_error": null}
`state` is `starting`, `running`, `reconnecting` (NATS or the consumer is unavailable),
`stopping` or `stopped`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime


class WorkerHealth:
    """The worker's state and counters, written to `path` (nowhere when None)."""

    def __init__(self, path: str | None, *, consumer: str, stream: str) -> None:
        self.path = path
        self.state = "starting"
        self.counts: Counter[str] = Counter()
        self.last_error: str | None = None
        self._consumer = consumer
        self._stream = stream

    def set_state(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        self.write()

    def count(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def write(self) -> None:
        """Replaces the file atomically, so a probe never reads half of it."""
        if self.path is None:
            return
        status = {
            "state": self.state,
            "pid": os.getpid(),
            "consumer": self._consumer,
            "stream": self._stream,
            "updated_at": datetime.now(UTC).isoformat(),
            "counts": dict(self.counts),
            "last_error": self.last_error,
        }
        partial = f"{self.path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(status, file)
        os.replace(partial, self.path)
