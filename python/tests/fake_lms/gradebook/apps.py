from django.apps import AppConfig


class GradebookConfig(AppConfig):
    name = "fake_lms.gradebook"
    label = "gradebook"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Connected the way edx-platform connects its receiver: to openedx-events' own signal.
        from openedx_events.learning.signals import EXTERNAL_GRADER_SCORE_SUBMITTED

        from .receivers import record_external_grader_score

        EXTERNAL_GRADER_SCORE_SUBMITTED.connect(record_external_grader_score)
