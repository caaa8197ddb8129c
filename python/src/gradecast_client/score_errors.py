"""What a gradecast call can fail with: one family, each error keeping the gRPC error as its cause."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

#: The trailer a gRPC server puts its `google.rpc.Status` (with typed details) in.
STATUS_DETAILS_TRAILER = "grpc-status-details-bin"

FieldViolation = error_details_pb2.BadRequest.FieldViolation


class GradecastError(Exception):
    """Base of every error this package raises."""


class PlaintextTokenError(GradecastError, ValueError):
    """The client was asked to send a grader token where anyone on the path could read it."""


class ScoreCallError(GradecastError):
    """A call gradecast answered with an error status (or that never reached it).

    `code` is the `grpc.StatusCode`, `details` the server's message, `status` the
    `google.rpc.Status` of the `grpc-status-details-bin` trailer (None without one), and
    `violations` every `google.rpc.BadRequest.FieldViolation` it carries, as
    googleapis-common-protos' own types.
    """

    code: grpc.StatusCode
    details: str
    status: status_pb2.Status | None
    violations: tuple[FieldViolation, ...]
    #: How many times this client sent the request (its own retries after DEADLINE_EXCEEDED
    #: included). The channel's retries of UNAVAILABLE happen inside each send, uncounted.
    attempts: int

    def __init__(self, error: grpc.RpcError, attempts: int = 1) -> None:
        self.code = error.code()
        self.details = error.details() or ""
        self.status = rich_status_of(error)
        self.violations = field_violations_of(self.status)
        self.attempts = attempts
        super().__init__(f"{self.code.name}: {self.details}")
        self.__cause__ = error


class ScoreRefusedError(ScoreCallError):
    """gradecast refused the score itself: INVALID_ARGUMENT (every broken rule is in
    `violations`) or FAILED_PRECONDITION (within its queue, the submission id belongs to
    another learner or problem). Sending the same request again cannot succeed."""


#: Status codes that mean "this score is refused", not "this call failed".
REFUSAL_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION})


def call_error_of(error: grpc.RpcError, attempts: int = 1) -> ScoreCallError:
    """The error to raise for a failed call: a refusal, or any other failure."""
    if error.code() in REFUSAL_CODES:
        return ScoreRefusedError(error, attempts)
    return ScoreCallError(error, attempts)


def rich_status_of(error: grpc.RpcError) -> status_pb2.Status | None:
    """The `google.rpc.Status` of the error's trailer, or None when it has none."""
    try:
        return rpc_status.from_call(error)
    except ValueError:
        # The trailer disagrees with the call's code or message (a proxy rewrote one of
        # them): its details are still the server's, so read them as they are.
        for key, value in error.trailing_metadata() or ():
            if key == STATUS_DETAILS_TRAILER:
                return status_pb2.Status.FromString(value)
        return None


def field_violations_of(status: status_pb2.Status | None) -> tuple[FieldViolation, ...]:
    """Every field violation of every `google.rpc.BadRequest` in `status`, in order."""
    if status is None:
        return ()
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(bad_request.field_violations)
    return tuple(violations)
