"""When a call is sent again: gradecast answers a repeated SubmitScore with the first answer
(same event id, nothing published twice), so a retry of the identical request is safe."""

from __future__ import annotations

import random
from dataclasses import dataclass

import grpc

#: The call may not have reached the server, or its answer was lost: try again.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a call is retried after UNAVAILABLE or DEADLINE_EXCEEDED.

    The wait before retry `n` (1 for the first) is `initial_backoff_s * multiplier**(n-1)`,
    at most `max_backoff_s`, times a random factor in [0.5, 1] so that graders cut off
    together do not come back together.
    """

    #: Sends of one request, the first included; 1 disables retries.
    max_attempts: int = 5
    initial_backoff_s: float = 0.2
    multiplier: float = 2.0
    max_backoff_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and the multiplier >= 1")

    def backoff_s(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number `retry` (1 for the first retry)."""
        ceiling = min(self.initial_backoff_s * self.multiplier ** (retry - 1), self.max_backoff_s)
        return ceiling * (rng or random).uniform(0.5, 1.0)


#: One attempt only.
NO_RETRY = RetryPolicy(max_attempts=1)
