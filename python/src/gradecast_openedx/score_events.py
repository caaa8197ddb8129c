"""A delivered NATS message read as a gradecast score event, or the reason it is poison."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from google.protobuf.message import DecodeError

from gradecast.v1 import event_pb2, options_pb2

#: The event type gradecast writes in every envelope (its `(gradecast.v1.event_type)` option):
#: `org.openedx.content_authoring.external_grader.score.submitted.v1`.
GRADECAST_EVENT_TYPE: str = (
    event_pb2.ExternalGraderScoreSubmitted.DESCRIPTOR.GetOptions().Extensions[
        options_pb2.event_type
    ]
)

_INT32_MAX = 2**31 - 1


class PoisonMessageError(Exception):
    """A message no retry can fix; it goes straight to the dead-letter subject.

    `reason` is one of the TypeScript SDK's: `decode` (not an envelope of this event type),
    `header-mismatch` (`ce-id` or `ce-type` disagree with the payload) or `validation`
    (the score breaks a rule of the contract).
    """

    def __init__(self, reason: str, message: str, event_id: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True)
class ScoreEvent:
    """One decoded, checked `EXTERNAL_GRADER_SCORE_SUBMITTED` event as delivered."""

    envelope: event_pb2.ExternalGraderScoreSubmitted
    #: Event id (UUID); also `ce-id` and `Nats-Msg-Id`; the same on every redelivery.
    id: uuid.UUID
    #: When gradecast accepted the score (UTC).
    time: datetime
    #: Subject it was published on, `<prefix>.scores.v1.<queue token>`.
    subject: str
    #: Position in the stream.
    stream_sequence: int
    #: 1 on the first delivery, +1 per redelivery.
    delivery_count: int

    @property
    def submission_id(self) -> int:
        return self.envelope.score_data.submission_id

    @property
    def submission_sequence(self) -> int:
        return self.envelope.submission_sequence

    @property
    def queue_name(self) -> str:
        return self.envelope.score_data.queue_name

    def describe(self) -> str:
        """One line for logs: which event of which submission."""
        return (
            f"event {self.id} (submission {self.submission_id} of queue {self.queue_name!r}, "
            f"sequence {self.submission_sequence}, stream sequence {self.stream_sequence}, "
            f"delivery {self.delivery_count})"
        )


def read_score_event(
    subject: str,
    data: bytes,
    headers: dict[str, str] | None,
    stream_sequence: int,
    delivery_count: int,
) -> ScoreEvent:
    """Decodes a delivered message and checks it is a valid score event whose CloudEvents
    headers agree with its payload. Raises PoisonMessageError otherwise."""
    envelope = event_pb2.ExternalGraderScoreSubmitted()
    try:
        envelope.ParseFromString(data)
    except DecodeError as error:
        raise PoisonMessageError("decode", f"payload is not protobuf: {error}") from error
    # Protobuf decodes many byte strings without error; an envelope without these is not one.
    metadata = envelope.metadata
    is_envelope = (
        envelope.HasField("metadata")
        and metadata.HasField("time")
        and envelope.HasField("score_data")
        and metadata.id != ""
    )
    if not is_envelope:
        raise PoisonMessageError(
            "decode", "payload is not an event envelope (no metadata, time or score_data)"
        )
    if metadata.event_type != GRADECAST_EVENT_TYPE:
        raise PoisonMessageError("decode", f"payload is a {metadata.event_type!r} event")
    for header, from_payload in (("ce-id", metadata.id), ("ce-type", metadata.event_type)):
        from_header = _header_value(headers, header)
        if from_header != from_payload:
            raise PoisonMessageError(
                "header-mismatch",
                f"header {header} is {from_header!r}, the payload says {from_payload!r}",
            )
    try:
        event_id = uuid.UUID(metadata.id)
    except ValueError as error:
        raise PoisonMessageError(
            "validation", f"metadata.id {metadata.id!r} is not a UUID"
        ) from error
    problems = score_problems(envelope)
    if problems:
        raise PoisonMessageError("validation", "; ".join(problems), metadata.id)
    return ScoreEvent(
        envelope=envelope,
        id=event_id,
        time=metadata.time.ToDatetime(tzinfo=UTC),
        subject=subject,
        stream_sequence=stream_sequence,
        delivery_count=delivery_count,
    )


def score_problems(envelope: event_pb2.ExternalGraderScoreSubmitted) -> list[str]:
    """The contract's rules an event breaks that would make applying it wrong (gradecast
    checked them all when it accepted the score; this guards against other publishers)."""
    data = envelope.score_data
    problems = []
    if not 0 < data.points_possible <= _INT32_MAX:
        problems.append(f"score_data.points_possible must be > 0, got {data.points_possible}")
    if not 0 <= data.points_earned <= max(data.points_possible, 0):
        problems.append(
            f"score_data.points_earned must be >= 0 and <= points_possible, got {data.points_earned}"
        )
    if data.submission_id <= 0:
        problems.append(f"score_data.submission_id must be > 0, got {data.submission_id}")
    for name in ("course_id", "user_id", "module_id", "queue_key", "queue_name"):
        if getattr(data, name).strip() == "":
            problems.append(f"score_data.{name} is required")
    if envelope.submission_sequence < 1:
        problems.append(f"submission_sequence must be >= 1, got {envelope.submission_sequence}")
    return problems


def _header_value(headers: dict[str, str] | None, name: str) -> str | None:
    """A CloudEvents header, percent-decoded as gradecast writes them; None when absent."""
    raw = (headers or {}).get(name)
    if raw is None:
        return None
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return raw  # not valid percent-encoding: compared raw, so reported as a mismatch
