"""gradecast's event as openedx-events' own signal: `EXTERNAL_GRADER_SCORE_SUBMITTED` from
`openedx_events.learning.signals`, data key `score`, an `ExternalGraderScoreData` from
`openedx_events.learning.data`. This is what edx-platform's receiver listens to.

Where upstream and gradecast's contract differ, the signal follows upstream: its event type is
`org.openedx.learning.external_grader.score.submitted.v1` (gradecast's envelope says
`org.openedx.content_authoring...`) and its data key `score` (the envelope's field is
`score_data`). The nine score fields are the same, name for name.
"""

from __future__ import annotations

from openedx_events.data import EventsMetadata
from openedx_events.learning.data import ExternalGraderScoreData
from openedx_events.learning.signals import EXTERNAL_GRADER_SCORE_SUBMITTED

from .score_events import ScoreEvent

SIGNAL = EXTERNAL_GRADER_SCORE_SUBMITTED


def signal_score_data(event: ScoreEvent) -> ExternalGraderScoreData:
    """The event's score as openedx-events' data class, field for field."""
    data = event.envelope.score_data
    return ExternalGraderScoreData(
        points_possible=data.points_possible,
        points_earned=data.points_earned,
        course_id=data.course_id,
        score_msg=data.score_msg,
        submission_id=data.submission_id,
        user_id=data.user_id,
        module_id=data.module_id,
        queue_key=data.queue_key,
        queue_name=data.queue_name,
    )


def signal_metadata(event: ScoreEvent) -> EventsMetadata:
    """The signal's metadata: gradecast's event id, time, source and sourcehost, so receivers
    and logs name the event gradecast published; the event type and minor version of the
    upstream signal, and `sourcelib` the installed openedx-events (which built the data)."""
    metadata = event.envelope.metadata
    return EventsMetadata(
        event_type=SIGNAL.event_type,
        id=event.id,
        minorversion=SIGNAL.minor_version,
        source=metadata.source,
        sourcehost=metadata.sourcehost,
        time=event.time,
    )


def send_score_signal(event: ScoreEvent) -> None:
    """Sends the signal to every connected receiver, in this thread. Raises the first
    receiver error (Django's `send`, not `send_robust`): the event is then not acknowledged."""
    SIGNAL.send_event_with_custom_metadata(
        signal_metadata(event), send_robust=False, score=signal_score_data(event)
    )
