"""A stand-in for the Open edX LMS, to try the bridge without edx-platform: Django settings
with gradecast_openedx installed, and a receiver of the upstream signal that prints each score
(edx-platform's own receiver updates the learner's problem instead)."""
