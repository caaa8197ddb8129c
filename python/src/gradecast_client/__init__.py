"""gradecast's Python client for graders: report scores over gRPC.

    from gradecast_client import ScoreClient, ScoreRefusedError

    with ScoreClient("gradecast.example.org:443", token=TOKEN, tls=True) as client:
        response = client.submit_score(points_possible=10, points_earned=7, ...)

The generated messages are in `gradecast.v1` (`score_pb2.ExternalGraderScoreData`, ...).
"""

from .loopback import is_loopback_address
from .retry_policy import NO_RETRY, RETRYABLE_CODES, RetryPolicy
from .score_client import DEFAULT_DEADLINE_S, ScoreClient
from .score_errors import (
    STATUS_DETAILS_TRAILER,
    FieldViolation,
    GradecastError,
    PlaintextTokenError,
    ScoreCallError,
    ScoreRefusedError,
)
from .service_config import SCORE_SERVICE_CONFIG, service_config_json

__all__ = [
    "DEFAULT_DEADLINE_S",
    "NO_RETRY",
    "RETRYABLE_CODES",
    "SCORE_SERVICE_CONFIG",
    "STATUS_DETAILS_TRAILER",
    "FieldViolation",
    "GradecastError",
    "PlaintextTokenError",
    "RetryPolicy",
    "ScoreCallError",
    "ScoreClient",
    "ScoreRefusedError",
    "is_loopback_address",
    "service_config_json",
]
