from django.db import models


class GradebookWrite(models.Model):
    """One application of a score by the receiver (a real LMS would update the learner's
    problem). Never unique on purpose: applying an event twice shows as two rows."""

    event_id = models.UUIDField()
    submission_id = models.BigIntegerField()
    points_earned = models.IntegerField()
    points_possible = models.IntegerField()
    score_msg = models.TextField()
