"""What the LMS database remembers of gradecast events."""

from django.db import models


class AppliedScore(models.Model):
    """The newest gradecast event applied to one submission.

    A submission is its id within its queue, as gradecast identifies it: the same
    `submission_id` in two queues is two submissions, each with its own row and sequence, so
    one queue's events never hide or replace another's.

    Written in the same transaction as the signal receivers' own database work, so it says
    exactly which event the LMS state reflects: an event whose `submission_sequence` is not
    above this one's (a redelivery, or an older regrade that arrives late) is not applied again.
    """

    id = models.BigAutoField(primary_key=True)
    #: The grader queue of the submission (`score_data.queue_name`, at most 128 bytes of UTF-8).
    #: Empty only on rows applied before the bridge kept it (see migration 0002).
    queue_name = models.CharField(max_length=128)
    #: edx-submissions' id of the learner's submission (`score_data.submission_id`).
    submission_id = models.BigIntegerField()
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
        constraints = [
            models.UniqueConstraint(
                fields=["queue_name", "submission_id"], name="gradecast_one_row_per_submission"
            )
        ]

    def __str__(self) -> str:
        return (
            f"submission {self.submission_id} of queue {self.queue_name!r} "
            f"at sequence {self.submission_sequence}"
        )
