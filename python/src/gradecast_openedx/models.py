"""What the LMS database remembers of gradecast events."""

from django.db import models


class AppliedScore(models.Model):
    """The newest gradecast event applied to one submission.

    Written in the same transaction as the signal receivers' own database work, so it says
    exactly which event the LMS state reflects: an event whose `submission_sequence` is not
    above this one's (a redelivery, or an older regrade that arrives late) is not applied again.
    """

    #: edx-submissions' id of the learner's submission (`score_data.submission_id`).
    submission_id = models.BigIntegerField(primary_key=True)
    #: The event's `submission_sequence`: 1 for the first score, +1 per regrade.
    submission_sequence = models.PositiveIntegerField()
    #: The event id (a UUID; also `ce-id` and `Nats-Msg-Id`).
    event_id = models.UUIDField()
    #: When gradecast accepted the score.
    event_time = models.DateTimeField()
    #: When this LMS applied it.
    applied_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "applied gradecast score"

    def __str__(self) -> str:
        return f"submission {self.submission_id} at sequence {self.submission_sequence}"
