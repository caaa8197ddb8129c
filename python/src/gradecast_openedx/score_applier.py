"""Applies one event to the LMS: the signal's receivers and the AppliedScore row, together."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from .models import AppliedScore
from .openedx_signal import send_score_signal
from .score_events import ScoreEvent


class Outcome(enum.Enum):
    #: The receivers ran and returned; the submission now stands at this event.
    APPLIED = "applied"
    #: The submission already stands at this event or a newer one: nothing was sent.
    ALREADY_APPLIED = "already-applied"


@dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    #: The submission's sequence in the LMS after this event.
    applied_sequence: int


def apply_score_event(
    event: ScoreEvent, send: Callable[[ScoreEvent], None] = send_score_signal
) -> ApplyResult:
    """Sends the signal for `event` unless its submission (its id within its queue) already
    stands at this sequence or a later one, and records the sequence, all in one database
    transaction. The same submission id in another queue is another submission: its row and
    sequence are its own.

    The receivers run inside that transaction, so their own writes to the LMS database commit
    with the record or not at all: a receiver that raises leaves nothing behind (the error
    propagates and the event is retried), and an event applied just before a crash is seen as
    applied when it comes back. The row lock serialises workers sharing the durable consumer.
    """
    with transaction.atomic():
        row = (
            AppliedScore.objects.select_for_update()
            .filter(queue_name=event.queue_name, submission_id=event.submission_id)
            .first()
        )
        if row is not None and row.submission_sequence >= event.submission_sequence:
            return ApplyResult(Outcome.ALREADY_APPLIED, row.submission_sequence)
        if row is None:
            legacy = _legacy_row_of(event)
            if legacy is not None:
                return ApplyResult(Outcome.ALREADY_APPLIED, legacy.submission_sequence)
        send(event)
        AppliedScore.objects.update_or_create(
            queue_name=event.queue_name,
            submission_id=event.submission_id,
            defaults={
                "submission_sequence": event.submission_sequence,
                "event_id": event.id,
                "event_time": event.time,
            },
        )
    return ApplyResult(Outcome.APPLIED, event.submission_sequence)


def _legacy_row_of(event: ScoreEvent) -> AppliedScore | None:
    """The row of an event applied before rows recorded their queue (migration 0002 left them
    with an empty `queue_name`), when `event` is that very event: delivered again across the
    upgrade, it is not applied twice. Other events do not match such a row, whose queue is
    unknown: another queue may use the same submission id."""
    return AppliedScore.objects.filter(
        queue_name="", submission_id=event.submission_id, event_id=event.id
    ).first()
