from django.apps import AppConfig


class GradesConfig(AppConfig):
    name = "demo_lms.grades"
    label = "demo_grades"

    def ready(self):
        from openedx_events.learning.signals import EXTERNAL_GRADER_SCORE_SUBMITTED

        from .receivers import print_score

        EXTERNAL_GRADER_SCORE_SUBMITTED.connect(print_score)
