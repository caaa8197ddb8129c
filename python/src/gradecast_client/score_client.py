"""A blocking gRPC client of gradecast's ScoreService, for graders written in Python."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from os import PathLike

import grpc

from gradecast.v1 import score_pb2, score_service_pb2, score_service_pb2_grpc

from .loopback import is_loopback_address
from .retry_policy import RETRYABLE_CODES, RetryPolicy
from .score_errors import PlaintextTokenError, call_error_of
from .service_config import SCORE_SERVICE_CONFIG, service_config_options

#: Deadline of one send of a call (the channel's retries of it included), in seconds.
DEFAULT_DEADLINE_S = 10.0


class ScoreClient:
    """Reports scores to gradecast at `address` (`host:port`).

    - `token`: the grader's token, sent as `authorization: Bearer <token>` on every call.
    - TLS: `credentials` (any `grpc.ChannelCredentials`, e.g. for mutual TLS), or
      `tls_ca_file` (a PEM CA to trust, like `gradecast submit --tls-ca`), or `tls=True`
      (the system's roots). Plaintext otherwise.
    - `allow_plaintext_token`: send `token` without TLS to a host other than loopback. Off by
      default: anyone on the path could read the token and report scores as this grader.
    - `deadline_s`: how long one call may take (the channel's retries included).
    - `service_config`: the channel's gRPC service config, `SCORE_SERVICE_CONFIG` by default:
      SubmitScore is retried on UNAVAILABLE, up to 5 attempts. Your own to change it, None for
      no retries by the channel. A `grpc.service_config` in `channel_options` wins over it.
    - `retry`: a call that ran out of its deadline (DEADLINE_EXCEEDED) is sent again with a
      fresh deadline (`RetryPolicy`; `NO_RETRY` turns it off).
    Every retry sends the identical request, which gradecast answers with the first answer
    (`replayed=True`, no second event).

    Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls: bool = False,
        tls_ca_file: str | PathLike[str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        allow_plaintext_token: bool = False,
        deadline_s: float = DEFAULT_DEADLINE_S,
        service_config: Mapping[str, object] | None = SCORE_SERVICE_CONFIG,
        retry: RetryPolicy | None = None,
        channel_options: tuple[tuple[str, object], ...] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        if tls_ca_file is not None and credentials is None:
            with open(tls_ca_file, "rb") as ca:
                credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
        elif tls and credentials is None:
            credentials = grpc.ssl_channel_credentials()
        if (
            token is not None
            and credentials is None
            and not allow_plaintext_token
            and not is_loopback_address(address)
        ):
            raise PlaintextTokenError(
                f"refusing to send a grader token without TLS to {address}: use TLS "
                "(tls=True, tls_ca_file or credentials), or allow it explicitly "
                "(allow_plaintext_token=True)"
            )
        self.address = address
        # One value per option, the caller's when given: gRPC does not say which duplicate wins.
        options = dict(service_config_options(service_config))
        options.update(channel_options)
        channel_options = tuple(options.items())
        self._channel = (
            grpc.secure_channel(address, credentials, options=channel_options)
            if credentials is not None
            else grpc.insecure_channel(address, options=channel_options)
        )
        self._stub = score_service_pb2_grpc.ScoreServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
        self._deadline_s = deadline_s
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def submit_score(
        self, score_data: score_pb2.ExternalGraderScoreData | None = None, /, **fields: object
    ) -> score_service_pb2.SubmitScoreResponse:
        """Reports a score, given as an `ExternalGraderScoreData` or as its fields by name.

        Returns the `SubmitScoreResponse` (event id and time, `replayed`, `published`,
        `submission_sequence`). Raises `ScoreRefusedError` when gradecast refuses the score
        (its `violations` name every broken rule), `ScoreCallError` for other failures.
        """
        if score_data is None:
            score_data = score_pb2.ExternalGraderScoreData(**fields)
        elif fields:
            raise TypeError("pass an ExternalGraderScoreData or its fields, not both")
        request = score_service_pb2.SubmitScoreRequest(score_data=score_data)
        return self._call(self._stub.SubmitScore, request)

    def get_score(
        self, submission_id: int, queue_name: str = ""
    ) -> score_service_pb2.GetScoreResponse:
        """The latest accepted score of a submission with its event; NOT_FOUND when none.

        A submission is its id within its queue: `queue_name` names the queue; empty, the
        latest score of the id among the queues this grader may read.
        """
        request = score_service_pb2.GetScoreRequest(
            submission_id=submission_id, queue_name=queue_name
        )
        return self._call(self._stub.GetScore, request)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ScoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method, request):
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return method(request, timeout=self._deadline_s, metadata=self._metadata)
            except grpc.RpcError as error:
                # UNAVAILABLE is not in RETRYABLE_CODES: the channel has retried it already.
                if error.code() not in RETRYABLE_CODES or attempt == attempts:
                    raise call_error_of(error, attempt) from error
            # The same request object, unchanged: the server sees the identical score.
            self._sleep(self._retry.backoff_s(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")
