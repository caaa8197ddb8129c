"""The fake LMS's receiver, steered by the tests through two files:

- GRADEBOOK_CALLS_FILE: the receiver appends one JSON line when a call starts (everything it
  received) and one when it ends (`returned`, `raised` or `held`), so tests see calls that
  were rolled back or killed, which the database cannot show.
- GRADEBOOK_PLAN_FILE (optional JSON): `{"fail": [{"submission_id": 7, "points_earned": 5,
  "times": 1}], "hold": [8]}`: raise on the first `times` calls (-1: every call) of a
  matching score, and block in the receiver for the listed submissions (for a kill -9).
"""

import json
import os
import threading
import time

from .models import GradebookWrite

#: How long a held receiver blocks before giving up (the tests kill the worker long before).
HOLD_BOUND_S = 120


def record_external_grader_score(sender, signal, score, metadata, **kwargs):
    call = {
        "phase": "started",
        "pid": os.getpid(),
        "at": time.time(),
        "signal_event_type": signal.event_type,
        "score": {
            name: getattr(score, name)
            for name in (
                "points_possible",
                "points_earned",
                "course_id",
                "score_msg",
                "submission_id",
                "user_id",
                "module_id",
                "queue_key",
                "queue_name",
            )
        },
        "score_class": f"{type(score).__module__}.{type(score).__qualname__}",
        "metadata": {
            "id": str(metadata.id),
            "event_type": metadata.event_type,
            "minorversion": metadata.minorversion,
            "source": metadata.source,
            "sourcehost": metadata.sourcehost,
            "time": metadata.time.isoformat(),
            "sourcelib": list(metadata.sourcelib),
        },
        "from_event_bus": kwargs.get("from_event_bus"),
    }
    _append(call)
    plan = _plan()
    if score.submission_id in plan.get("hold", []):
        _append({**_ids(call), "phase": "held"})
        threading.Event().wait(HOLD_BOUND_S)
        raise TimeoutError("held receiver was not killed in time")
    for rule in plan.get("fail", []):
        if _matches(rule, score) and (
            rule["times"] < 0 or _earlier_calls(call["metadata"]["id"]) <= rule["times"]
        ):
            _append({**_ids(call), "phase": "raised"})
            raise RuntimeError(f"gradebook refused submission {score.submission_id}")
    GradebookWrite.objects.create(
        event_id=metadata.id,
        submission_id=score.submission_id,
        points_earned=score.points_earned,
        points_possible=score.points_possible,
        score_msg=score.score_msg,
    )
    _append({**_ids(call), "phase": "returned"})


def _ids(call):
    return {"event_id": call["metadata"]["id"], "pid": call["pid"], "at": time.time()}


def _matches(rule, score):
    return (
        rule["submission_id"] == score.submission_id
        and rule.get("points_earned", score.points_earned) == score.points_earned
    )


def _earlier_calls(event_id):
    """Calls of this event started so far, this one included."""
    return sum(
        1 for line in _calls() if line["phase"] == "started" and line["metadata"]["id"] == event_id
    )


def _plan():
    path = os.environ.get("GRADEBOOK_PLAN_FILE")
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _calls():
    with open(os.environ["GRADEBOOK_CALLS_FILE"], encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.endswith("\n")]


def _append(line):
    with open(os.environ["GRADEBOOK_CALLS_FILE"], "a", encoding="utf-8") as file:
        file.write(json.dumps(line) + "\n")
