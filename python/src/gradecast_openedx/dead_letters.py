"""Dead letters, as the TypeScript subscriber SDK writes them (src/subscriber/dead-letter.ts),
so `gradecast dlq list` and `gradecast dlq redrive` handle the LMS worker's too."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from .subjects import UNROUTABLE_QUEUE_NAME, dead_letter_subject, queue_name_of_subject

#: Headers a dead letter carries on top of the original message's own.
REASON_HEADER = "gradecast-dlq-reason"
ERROR_HEADER = "gradecast-dlq-error"
DELIVERY_COUNT_HEADER = "gradecast-dlq-delivery-count"
ORIGINAL_SUBJECT_HEADER = "gradecast-dlq-original-subject"
STREAM_SEQUENCE_HEADER = "gradecast-dlq-stream-sequence"
#: The durable consumer that gave up on it (the TypeScript SDK writes the same header).
CONSUMER_HEADER = "gradecast-dlq-consumer"

#: Longest `gradecast-dlq-error`: a receiver's traceback or HTML page must not bloat the DLQ.
MAX_ERROR_HEADER_LENGTH = 512

_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class DeadLetterReceipt:
    subject: str
    #: Sequence in the dead-letter stream.
    sequence: int
    #: True when the stream already held it (an earlier attempt's term was lost).
    is_duplicate: bool


async def publish_dead_letter(
    js: JetStreamContext,
    msg: Msg,
    *,
    reason: str,
    error_message: str,
    consumer: str,
    subject_prefix: str,
    queue_name: str | None,
) -> DeadLetterReceipt:
    """Publishes `msg` to its queue's dead-letter subject: the same bytes, its headers plus
    the `gradecast-dlq-*` ones, and `Nats-Msg-Id` = `dlq-<stream>-<stream sequence>` so a
    second attempt for the same delivery is dropped by the stream, while a re-driven copy
    (new stream sequence) that fails again is dead-lettered again. Returns once JetStream
    stored it; only then may the caller terminate the original."""
    metadata = msg.metadata
    routed_queue = queue_name_of_subject(subject_prefix, msg.subject) or queue_name
    subject = dead_letter_subject(subject_prefix, routed_queue or UNROUTABLE_QUEUE_NAME)
    headers = dict(msg.headers or {})
    headers.update(
        {
            REASON_HEADER: reason,
            ERROR_HEADER: one_line(error_message, MAX_ERROR_HEADER_LENGTH),
            DELIVERY_COUNT_HEADER: str(metadata.num_delivered),
            ORIGINAL_SUBJECT_HEADER: msg.subject,
            STREAM_SEQUENCE_HEADER: str(metadata.sequence.stream),
            CONSUMER_HEADER: consumer,
            "Nats-Msg-Id": f"dlq-{metadata.stream}-{metadata.sequence.stream}",
        }
    )
    ack = await js.publish(subject, msg.data, headers=headers)
    return DeadLetterReceipt(subject, ack.seq, bool(ack.duplicate))


def one_line(text: str, max_length: int) -> str:
    """`text` without control characters (a header value is one line), cut to `max_length`."""
    flat = _CONTROL_RUN.sub(" ", text).strip()
    return flat if len(flat) <= max_length else flat[: max_length - 1] + "…"
