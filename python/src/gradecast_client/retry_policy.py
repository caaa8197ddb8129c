"""When the client itself sends a call again: gradecast answers a repeated SubmitScore with the
first answer (same event id, nothing published twice), so a retry of the identical request is safe.

Two layers retry, each what the other cannot:
- the channel, following the service config (`SCORE_SERVICE_CONFIG`): SubmitScore after
  UNAVAILABLE, inside one call and its one deadline;
- this client, following a `RetryPolicy`: a call whose attempt ran out of its deadline
  (DEADLINE_EXCEEDED), sent again with a fresh deadline, which gRPC's retries never do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import grpc

#: The codes this client retries itself. UNAVAILABLE is left to the channel's service config:
#: retrying it here too would multiply the attempts.
RETRYABLE_CODES = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the client sends a call again after DEADLINE_EXCEEDED.

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
