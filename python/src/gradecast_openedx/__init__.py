"""gradecast's Open edX LMS bridge: a Django app whose worker re-emits every gradecast score
event, in process, as openedx-events' `EXTERNAL_GRADER_SCORE_SUBMITTED` signal, so the LMS's
own receiver applies it. Add it to INSTALLED_APPS (or let the `lms.djangoapp` plugin entry
point do it), migrate, and run `manage.py lms consume_gradecast_scores`.
"""
